// The publish routes (PROTOCOL.md 7): validation in publish_request, the
// store's answer shaped per item on the request's own I/O thread.
#include "api/api_handler.hpp"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "api/json_replies.hpp"
#include "core/clock.hpp"

namespace herald::api {
namespace json = boost::json;
namespace http = boost::beast::http;
using transport::HttpRequest;
using transport::HttpResponse;

std::optional<double> ApiHandler::publish_rate_wait(std::string_view key) {
  if (ctx_.config.publish_rate <= 0) return std::nullopt;
  std::lock_guard lock(rate_mu_);
  auto it = rate_.find(key);
  if (it == rate_.end()) {
    const double rate = ctx_.config.publish_rate;
    it = rate_.emplace(std::string(key), TokenBucket(rate, std::max(1.0, rate))).first;
  }
  if (it->second.try_take()) return std::nullopt;
  return it->second.seconds_until_available();
}

void ApiHandler::publish(const HttpRequest& req, bool batch, transport::IoWorker* worker,
                         transport::Responder respond_now) {
  ctx_.metrics.publish_requests.inc();
  // Every answer, refusals included, is timed from here: what a publisher
  // waits for on the server's side, the group commit included.
  auto respond = [this, start = SteadyClock::now(), respond_now = std::move(respond_now)](HttpResponse res) {
    ctx_.metrics.publish_latency.observe(std::chrono::duration<double>(SteadyClock::now() - start).count());
    respond_now(std::move(res));
  };
  auto reject = [this, &respond](errc code, HttpResponse res) {
    ctx_.metrics.count_publish_rejected(code);
    respond(std::move(res));
  };
  if (ctx_.draining.load(std::memory_order_relaxed)) {
    auto res = error(errc::draining, "server is draining");
    res.set(http::field::retry_after, gateway::drain_retry_after_seconds(ctx_.config));
    return reject(errc::draining, std::move(res));
  }
  std::string_view key = req[http::field::authorization];
  key.remove_prefix(std::min<std::size_t>(7, key.size()));
  if (auto wait = publish_rate_wait(key)) {
    auto res = error(errc::rate_limited, "publish rate limit exceeded");
    res.set(http::field::retry_after, std::to_string(std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(*wait)))));
    return reject(errc::rate_limited, std::move(res));
  }

  std::string traceparent;
  if (auto tp = req.find("traceparent"); tp != req.end()) traceparent = trace_id_from_traceparent(tp->value());
  const PublishLimits limits{ctx_.config.max_message_bytes, ctx_.config.max_publish_users,
                             ctx_.config.max_batch_messages};
  auto parsed = parse_publish_body(req.body(), batch, limits, traceparent, unix_ms_now());
  if (auto* e = std::get_if<ItemError>(&parsed)) return reject(e->code, error(e->code, e->message, e->field));
  auto& items = std::get<ParsedItems>(parsed);
  if (!batch) {
    if (auto* e = std::get_if<ItemError>(&items[0])) return reject(e->code, error(e->code, e->message, e->field));
  }

  // Scheduled items answer now; the rest go to the store in one commit.
  struct Slot {
    std::size_t item;
    std::size_t count;
  };
  auto results = std::make_shared<std::vector<json::value>>(items.size());
  std::vector<store::NewMessage> to_append;
  auto users = std::make_shared<std::vector<std::string>>();
  std::vector<Slot> slots;
  bool overloaded = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto* e = std::get_if<ItemError>(&items[i])) {
      (*results)[i] = error_object(*e);
      continue;
    }
    auto& item = std::get<PublishItem>(items[i]);
    if (item.deliver_at) {
      json::array per_user;
      for (auto& m : item.messages) {
        json::object r{{"user", m.user}, {"id", m.id}};
        std::string user = m.user, id = m.id;
        switch (delayed_.schedule(std::move(m), *item.deliver_at)) {
          case gateway::DelayedMessages::Result::scheduled: r["scheduled"] = true; break;
          case gateway::DelayedMessages::Result::duplicate:
            r["scheduled"] = true;
            r["duplicate"] = true;
            break;
          case gateway::DelayedMessages::Result::full:
            overloaded = true;
            r = error_object(ItemError{errc::overloaded, "too many scheduled messages", ""});
            break;
          case gateway::DelayedMessages::Result::unavailable:
            r = error_object(ItemError{errc::store_unavailable, "store unavailable", ""});
            break;
        }
        per_user.push_back(std::move(r));
      }
      if (item.multi_user) (*results)[i] = json::object{{"results", std::move(per_user)}};
      else (*results)[i] = std::move(per_user[0]);
      continue;
    }
    slots.push_back({i, item.messages.size()});
    for (auto& m : item.messages) {
      users->push_back(m.user);
      to_append.push_back(std::move(m));
    }
  }
  // multi_user flags by item index, for shaping results later.
  auto multi = std::make_shared<std::vector<bool>>(items.size(), false);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto* it = std::get_if<PublishItem>(&items[i])) (*multi)[i] = it->multi_user;
  }

  auto finish = [this, results, batch, respond](bool rejected) {
    if (!batch) {
      const json::value& only = (*results)[0];
      if (only.is_object() && only.as_object().contains("error")) {
        const auto& code = only.as_object().at("error").as_object().at("code").as_string();
        ctx_.metrics.count_publish_rejected(errc_from_name(code));
        const int status = code == "overloaded" ? 429 : code == "store_unavailable" ? 503 : 400;
        auto res = json_response(static_cast<http::status>(status), json::serialize(only));
        if (status == 429) res.set(http::field::retry_after, "1");
        return respond(std::move(res));
      }
      if (only.is_object() && only.as_object().contains("results")) {
        return respond(json_response(http::status::ok, only));
      }
      return respond(json_response(http::status::ok, json::object{{"results", json::array{only}}}));
    }
    (void)rejected;
    json::array arr(results->begin(), results->end());
    respond(json_response(http::status::ok, json::object{{"results", std::move(arr)}}));
  };

  if (to_append.empty()) return finish(overloaded);

  // The answer is built from the outcomes on the request's own I/O thread:
  // the store worker is the serial stage of every publish and only hands it over.
  auto answer = [results, users, slots = std::move(slots), multi, finish](std::vector<store::AppendOutcome> outcomes) {
    std::size_t pos = 0;
    for (const auto& slot : slots) {
      json::array per_user;
      for (std::size_t k = 0; k < slot.count; ++k, ++pos) {
        const auto& o = outcomes[pos];
        if (const auto* r = std::get_if<store::AppendResult>(&o)) {
          per_user.push_back(json::object{});
          auto& obj = per_user.back().as_object();
          obj["user"] = (*users)[pos];
          if (r->scheduled) {
            // Still scheduled: answered as a scheduled publish of that id is.
            obj["id"] = r->id;
            obj["scheduled"] = true;
            obj["duplicate"] = true;
            continue;
          }
          obj["seq"] = r->seq;
          obj["id"] = r->id;
          obj["duplicate"] = r->duplicate;
        } else {
          const errc code = std::get<errc>(o);
          // Shed by its priority while the rest of the batch went in (PROTOCOL.md 7).
          per_user.push_back(error_object(ItemError{
              code, code == errc::overloaded ? "store queue is full, retry later" : "store unavailable", ""}));
        }
      }
      (*results)[slot.item] = (*multi)[slot.item] ? json::value(json::object{{"results", std::move(per_user)}})
                                                  : std::move(per_user[0]);
    }
    finish(false);
  };
  const bool queued = publisher_.publish(
      std::move(to_append), [worker, answer = std::move(answer)](std::vector<store::AppendOutcome> outcomes) mutable {
        if (worker == nullptr) return answer(std::move(outcomes));
        boost::asio::post(worker->context(), [answer = std::move(answer), outcomes = std::move(outcomes)]() mutable {
          answer(std::move(outcomes));
        });
      });
  if (!queued) {
    auto res = error(errc::overloaded, "store queue is full, retry later");
    res.set(http::field::retry_after, "1");
    return reject(errc::overloaded, std::move(res));
  }
}

}  // namespace herald::api
