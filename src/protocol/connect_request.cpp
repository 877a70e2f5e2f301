#include "protocol/connect_request.hpp"

#include <charconv>

#include <boost/url/parse.hpp>

namespace herald::protocol {

bool valid_device_id(std::string_view d) {
  if (d.empty() || d.size() > 64) return false;
  for (char c : d) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// Value of cookie `name` in a Cookie header (RFC 6265 "a=b; c=d"), if present.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::string(pair.substr(eq + 1));
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

}  // namespace

ConnectRequest parse_connect_request(std::string_view target, std::optional<std::string_view> authorization,
                                     std::optional<std::string_view> cookie) {
  ConnectRequest out;
  auto url = boost::urls::parse_origin_form(target);
  const auto header_token = [&](std::string_view v) {
    return v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ") ? std::string(v.substr(7))
                                                                                      : std::string();
  };
  if (!url) {
    // Not a valid request target (a raw non-ASCII byte in the query, say):
    // at /v1/ws a bad request, but after the credential check (PROTOCOL.md
    // 10: 401 before 400), with the token from the header or the cookie.
    if (target.substr(0, target.find('?')) != "/v1/ws") return out;
    out.path_ok = true;
    if (authorization) out.token = header_token(*authorization);
    else if (cookie) out.token = cookie_value(*cookie, "herald_token");
    out.param_error = ConnectParamError{"", "malformed request target (percent-encode the query)"};
    return out;
  }
  if (url->path() != "/v1/ws") return out;
  out.path_ok = true;
  const auto params = url->params();

  if (authorization) {
    out.token = header_token(*authorization);
  } else if (auto p = params.find("token"); p != params.end()) {
    out.token = (*p).value;
  } else if (cookie) {
    out.token = cookie_value(*cookie, "herald_token");
  }

  auto bad = [&out](std::string field, std::string message) {
    if (!out.param_error) out.param_error = ConnectParamError{std::move(field), std::move(message)};
  };
  if (auto p = params.find("device"); p != params.end()) {
    out.device = (*p).value;
    if (!valid_device_id(*out.device)) bad("device", "device must be 1..64 characters of [A-Za-z0-9._:-]");
  }
  if (auto p = params.find("last_seq"); p != params.end()) {
    const std::string v = (*p).value;
    std::uint64_t seq = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seq);
    if (v.empty() || ec != std::errc{} || end != v.data() + v.size()) {
      bad("last_seq", "last_seq must be a non-negative integer");
    } else {
      out.last_seq = seq;
    }
  }
  if (auto p = params.find("epoch"); p != params.end()) {
    out.epoch = std::string((*p).value);
    if (out.epoch->size() > kMaxEpochBytes) bad("epoch", "epoch too long");
  }
  if (auto p = params.find("attempt"); p != params.end()) {
    out.attempt = parse_connect_attempt((*p).value);
    if (!out.attempt) bad("attempt", "attempt must be <session>.<n>: 1..64 characters of [A-Za-z0-9_-], a dot, an integer >= 1");
  }
  return out;
}

std::optional<ConnectAttempt> parse_connect_attempt(std::string_view v) {
  const auto dot = v.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 64) return std::nullopt;
  const std::string_view session = v.substr(0, dot);
  const std::string_view n = v.substr(dot + 1);
  for (const char c : session) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return std::nullopt;
  }
  ConnectAttempt a{std::string(session), 0};
  auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), a.n);
  if (n.empty() || ec != std::errc{} || end != n.data() + n.size() || a.n == 0) return std::nullopt;
  return a;
}

}  // namespace herald::protocol
