// Implementation of batch_codec.h.
#include "storage/batch_codec.h"

#include <zstd.h>

#include <cstdlib>

namespace edgeline {
namespace {

// Below this, bodies and sources are stored without a zstd frame.
constexpr size_t kMinCompressBytes = 256;

// A batch whose lines hold a line break (a string field may, in line protocol) is stored as
// "<bytes>:<line>\n" records instead, under the codec name plus kFramedSuffix.
constexpr std::string_view kFramedSuffix = "+framed";

bool AnyLineBreak(const std::vector<std::string>& lines) {
  for (const auto& l : lines) {
    if (l.find('\n') != std::string::npos) return true;
  }
  return false;
}

std::string JoinFramed(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += std::to_string(l.size());
    out += ':';
    out += l;
    out += '\n';
  }
  return out;
}

Result<std::vector<std::string>> SplitFramed(std::string_view body) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t colon = body.find(':', pos);
    if (colon == std::string_view::npos || colon == pos || colon - pos > 19) {
      return Status::Corruption("framed batch body malformed");
    }
    size_t length = 0;
    for (size_t i = pos; i < colon; ++i) {
      if (body[i] < '0' || body[i] > '9') return Status::Corruption("framed batch body malformed");
      length = length * 10 + static_cast<size_t>(body[i] - '0');
    }
    if (length > body.size() - colon - 1 || body.size() - colon - 1 - length < 1 ||
        body[colon + 1 + length] != '\n') {
      return Status::Corruption("framed batch body malformed");
    }
    lines.emplace_back(body.substr(colon + 1, length));
    pos = colon + 1 + length + 1;
  }
  return lines;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  size_t total = 0;
  for (const auto& l : lines) total += l.size() + 1;
  std::string out;
  out.reserve(total);
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

Result<std::vector<std::string>> SplitLines(std::string_view body) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < body.size()) {
    size_t nl = body.find('\n', start);
    if (nl == std::string_view::npos) return Status::Corruption("batch body not newline-terminated");
    lines.emplace_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string EncodeSourcesText(const std::vector<SourceRun>& runs) {
  std::string out;
  for (const auto& r : runs) {
    out += std::to_string(r.lines);
    out += '\t';
    out += r.topic;
    out += '\n';
  }
  return out;
}

Result<std::vector<SourceRun>> DecodeSourcesText(std::string_view text) {
  std::vector<SourceRun> runs;
  size_t start = 0;
  while (start < text.size()) {
    size_t tab = text.find('\t', start);
    size_t nl = text.find('\n', start);
    if (tab == std::string_view::npos || nl == std::string_view::npos || tab > nl) {
      return Status::Corruption("batch sources malformed");
    }
    SourceRun r;
    r.lines = std::strtoll(std::string(text.substr(start, tab - start)).c_str(), nullptr, 10);
    r.topic = std::string(text.substr(tab + 1, nl - tab - 1));
    runs.push_back(std::move(r));
    start = nl + 1;
  }
  return runs;
}

// zstd frames start with 28 B5 2F FD. Sources text starts with a digit (the run's line count).
bool IsZstdFrame(std::string_view blob) {
  return blob.size() >= 4 && static_cast<unsigned char>(blob[0]) == 0x28 &&
         static_cast<unsigned char>(blob[1]) == 0xB5 && static_cast<unsigned char>(blob[2]) == 0x2F &&
         static_cast<unsigned char>(blob[3]) == 0xFD;
}

}  // namespace

int64_t StoredBytes(const std::vector<EncodedBatch>& encoded) {
  int64_t n = 0;
  for (const auto& e : encoded) {
    if (e.codec.empty()) continue;  // an input without lines: no row
    n += static_cast<int64_t>(e.body.size() + e.sources.size()) + kBatchRowOverheadBytes;
  }
  return n;
}

std::string StoredBytesSql() {
  return "(length(body) + COALESCE(length(sources), 0) + " + std::to_string(kBatchRowOverheadBytes) + ")";
}

// Creating a zstd context per batch costs more than compressing one line: both are reused.
BatchCodec::BatchCodec(int zstd_level) : zstd_level_(zstd_level), cctx_(ZSTD_createCCtx()), dctx_(ZSTD_createDCtx()) {}

BatchCodec::~BatchCodec() {
  ZSTD_freeCCtx(cctx_);
  ZSTD_freeDCtx(dctx_);
}

Result<std::vector<EncodedBatch>> BatchCodec::Encode(const std::vector<BatchInput>& batches) {
  std::vector<EncodedBatch> encoded(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    const BatchInput& in = batches[i];
    if (in.lines.empty()) continue;
    const bool framed = AnyLineBreak(in.lines);
    std::string raw = framed ? JoinFramed(in.lines) : JoinLines(in.lines);
    encoded[i].raw_bytes = static_cast<int64_t>(raw.size());
    // A frame costs more CPU than it saves below a few lines (one 120-byte point compresses
    // to about its own size): a lone MQTT message is stored as it is.
    std::string z = raw.size() >= kMinCompressBytes ? CompressFrame(raw) : std::string();
    if (!z.empty() && z.size() < raw.size()) {
      encoded[i].body = std::move(z);
      encoded[i].codec = "zstd";
    } else {
      encoded[i].body = std::move(raw);
      encoded[i].codec = "none";
    }
    if (framed) encoded[i].codec += kFramedSuffix;
    if (!in.sources.empty()) {
      int64_t covered = 0;
      for (const auto& r : in.sources) covered += r.lines;
      if (covered != static_cast<int64_t>(in.lines.size())) {
        return Status::InvalidArgument("batch sources cover " + std::to_string(covered) + " of " +
                                       std::to_string(in.lines.size()) + " lines");
      }
      // Topics repeat, so a compressed run shrinks to a few bytes.
      std::string text = EncodeSourcesText(in.sources);
      if (text.size() < kMinCompressBytes) {
        encoded[i].sources = std::move(text);  // plain text: never starts with zstd's magic
      } else {
        encoded[i].sources = CompressFrame(text);
        if (encoded[i].sources.empty()) return Status::Internal("zstd cannot compress batch sources");
      }
    }
  }
  return encoded;
}

Result<std::vector<std::string>> BatchCodec::DecodeLines(std::string_view codec, std::string_view body,
                                                         int64_t raw_bytes) {
  const bool framed = codec.size() > kFramedSuffix.size() && codec.substr(codec.size() - kFramedSuffix.size()) == kFramedSuffix;
  if (framed) codec.remove_suffix(kFramedSuffix.size());
  ASSIGN_OR_RETURN(std::string raw, Decompress(codec, body, raw_bytes));
  return framed ? SplitFramed(raw) : SplitLines(raw);
}

Result<std::vector<SourceRun>> BatchCodec::DecodeSources(std::string_view blob) {
  if (!IsZstdFrame(blob)) return DecodeSourcesText(blob);
  ASSIGN_OR_RETURN(std::string text, DecompressFrame(blob));
  return DecodeSourcesText(text);
}

std::string BatchCodec::CompressFrame(std::string_view raw) {
  std::string z(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compressCCtx(cctx_, z.data(), z.size(), raw.data(), raw.size(), zstd_level_);
  if (ZSTD_isError(n)) return std::string();
  z.resize(n);
  return z;
}

Result<std::string> BatchCodec::Decompress(std::string_view codec, std::string_view body, int64_t raw_bytes) {
  if (codec == "none") return std::string(body);
  if (codec != "zstd") return Status::Corruption("unknown codec " + std::string(codec));
  std::string out(static_cast<size_t>(raw_bytes), '\0');
  size_t n = ZSTD_decompressDCtx(dctx_, out.data(), out.size(), body.data(), body.size());
  if (ZSTD_isError(n) || static_cast<int64_t>(n) != raw_bytes) {
    return Status::Corruption("zstd batch body does not decompress");
  }
  return out;
}

Result<std::string> BatchCodec::DecompressFrame(std::string_view frame) {
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (64u << 20)) {
    return Status::Corruption("zstd frame has no valid content size");
  }
  return Decompress("zstd", frame, static_cast<int64_t>(size));
}

}  // namespace edgeline
