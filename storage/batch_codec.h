// BatchCodec: how a batch's lines and sources are stored (docs/QUEUE_FORMAT.md, table `batch`).
// The body is the newline-terminated lines (or, when a line holds a line break, length-framed
// lines: codec "<codec>+framed"), as a zstd frame from 256 bytes on when that is smaller, else as
// they are; the sources are "<lines>\t<topic>\n" runs, as a zstd frame from 256
// bytes on. Owns one zstd compression and one decompression context, reused across calls.
// Not thread-safe: the queue calls it under its mutex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/queue.h"

typedef struct ZSTD_CCtx_s ZSTD_CCtx;
typedef struct ZSTD_DCtx_s ZSTD_DCtx;

namespace edgeline {

// One batch as stored: the `body`, `codec`, `raw_bytes` and `sources` columns.
struct EncodedBatch {
  std::string body;
  std::string codec;  // "zstd" or "none", with "+framed" when the lines are length-framed
  int64_t raw_bytes = 0;
  std::string sources;  // empty when the input had none
};

// What one batch row costs in the file beyond its body and sources: the row's header and
// integer columns, its (stream, seq) index entry and page slack, as measured for 1-line batches
// (storage_compaction_test checks the bound against the file).
inline constexpr int64_t kBatchRowOverheadBytes = 80;

// The bytes the size bound counts for `encoded`: bodies, sources and the per-row cost.
int64_t StoredBytes(const std::vector<EncodedBatch>& encoded);

// The same figure in SQL, for rows of table `batch`.
std::string StoredBytesSql();

class BatchCodec {
 public:
  explicit BatchCodec(int zstd_level);
  ~BatchCodec();
  BatchCodec(const BatchCodec&) = delete;
  BatchCodec& operator=(const BatchCodec&) = delete;

  // One entry per input, left empty for an input without lines. InvalidArgument when an
  // input's sources do not cover exactly its lines.
  Result<std::vector<EncodedBatch>> Encode(const std::vector<BatchInput>& batches);

  // The lines of a stored body. Corruption when it does not decode.
  Result<std::vector<std::string>> DecodeLines(std::string_view codec, std::string_view body, int64_t raw_bytes);

  // The runs of a stored, non-empty sources blob. Corruption when it does not decode.
  Result<std::vector<SourceRun>> DecodeSources(std::string_view blob);

 private:
  std::string CompressFrame(std::string_view raw);  // "" on failure
  Result<std::string> Decompress(std::string_view codec, std::string_view body, int64_t raw_bytes);
  Result<std::string> DecompressFrame(std::string_view frame);

  const int zstd_level_;
  ZSTD_CCtx* cctx_;
  ZSTD_DCtx* dctx_;
};

}  // namespace edgeline
