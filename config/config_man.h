// The manual page edgeline(1), in roff with the man macros: the CLI's help texts plus an
// ENVIRONMENT section walked from the configuration table. `edgeline help --man` prints it;
// scripts/package.sh installs it as /usr/share/man/man1/edgeline.1.gz.
#pragma once

#include <string>
#include <vector>

namespace edgeline {

struct ManPageInput {
  std::string version;  // "0.1.0"
  // The top-level help: a "usage: ..." line (the SYNOPSIS), then paragraphs and lists under
  // headings ending in ':' (the DESCRIPTION).
  std::string overview;
  // One help text per command form, each starting with "usage: edgeline ..." lines, then
  // paragraphs and an indented option list ("  --name ARG   description", continuation
  // lines indented further).
  std::vector<std::string> commands;
};

std::string RenderManPage(const ManPageInput& input);

}  // namespace edgeline
