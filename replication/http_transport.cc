// HttpResponse helpers shared by every HttpTransport implementation (and test fakes).
#include "replication/http_transport.h"

#include "common/strings.h"

namespace edgeline {

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

}  // namespace edgeline
