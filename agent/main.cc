// edgeline: the edge agent binary. Only wires: everything lives in the libraries.
#include "agent/cli.h"

int main(int argc, char** argv) { return edgeline::RunCli(argc, argv); }
