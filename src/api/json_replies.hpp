#pragma once
// The JSON answers every API route builds: bodies, errors (PROTOCOL.md 10's
// shape, the one table in core/errc), and stored JSON text spliced in as it is.
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "api/publish_request.hpp"
#include "core/errc.hpp"
#include "transport/http_handler.hpp"

namespace herald::api {

transport::HttpResponse json_response(boost::beast::http::status status, std::string body);
transport::HttpResponse json_response(boost::beast::http::status status, const boost::json::value& v);
transport::HttpResponse error(errc code, std::string_view message, std::string_view field = {});
// 405 naming the method the route has (RFC 9110: with `Allow`); a GET
// route answers HEAD too (transport::HttpSession).
transport::HttpResponse not_allowed(boost::beast::http::verb allowed);
// A batch item's or a per-user result's {"error":{...}}.
boost::json::object error_object(const ItemError& e);

// `data` goes out as the text it was published with (PROTOCOL.md 10:
// integers keep their exact value): a Boost.JSON value would hold
// 12345678901234567890123 as a double. So the document is serialized
// without it and the stored text is added as the object's last member.
// The text was validated as JSON when it was published.
std::string with_raw_member(const boost::json::object& o, std::string_view key, std::string_view raw_json);
// A JSON array of items that are JSON texts already.
std::string array_text(const std::vector<std::string>& items);

}  // namespace herald::api
