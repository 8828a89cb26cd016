#include "replication/gzip.h"

#include <zlib.h>

#include <cstdint>

namespace edgeline {

Result<std::string> GzipCompress(std::string_view input) {
  if (input.size() > 0xFFFFFFFFu) return Status::InvalidArgument("gzip: input larger than 4 GiB");
  z_stream zs{};
  // windowBits 15 + 16 asks zlib for a gzip wrapper instead of a zlib one.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("gzip: deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(input.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  zs.avail_in = static_cast<uInt>(input.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const size_t produced = zs.total_out;
  deflateEnd(&zs);
  // deflateBound guarantees room for a single Z_FINISH call.
  if (rc != Z_STREAM_END) return Status::Internal("gzip: deflate did not finish");
  out.resize(produced);
  return out;
}

}  // namespace edgeline
