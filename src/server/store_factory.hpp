#pragma once
// Builds the configured InboxStore backend.
#include <memory>

#include "config/server_config.hpp"
#include "store/inbox_store.hpp"

namespace herald::server {

std::unique_ptr<store::InboxStore> make_store(const config::ServerConfig& config);

}  // namespace herald::server
