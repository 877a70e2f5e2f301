#pragma once
// A move-only void() callable that stores small captures inline.
#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace herald::timers {

// What a timer runs when it fires. std::function would do, but libstdc++'s
// std::function keeps only 16 bytes inline, so the usual timer lambda (a
// weak_ptr or a pointer plus a generation, ~24 bytes) would cost one heap
// allocation per schedule; with hundreds of thousands of connections re-arming
// heartbeats that is the allocator churn the timing wheel exists to avoid.
//
// Owns the callable. Callables up to `inline_capacity` bytes (alignment up to
// 8, nothrow-movable) live inside the object; larger ones fall back to the
// heap, so any void() callable is accepted. Move-only, so it also takes
// move-only lambdas that std::function rejects. Not thread-safe (a value type).
class InplaceCallback {
 public:
  // 32 bytes: four pointers' worth of captures, which covers
  // [weak_ptr, id] and [this, conn, generation]; the object is then 40 bytes.
  static constexpr std::size_t inline_capacity = 32;
  // Pointer alignment: a 16-byte alignment would pad every object to 48 bytes.
  static constexpr std::size_t inline_alignment = alignof(void*);

  template <class F>
  static constexpr bool stored_inline = sizeof(F) <= inline_capacity &&
                                        alignof(F) <= inline_alignment &&
                                        std::is_nothrow_move_constructible_v<F>;

  InplaceCallback() noexcept = default;
  InplaceCallback(std::nullptr_t) noexcept {}

  // An empty std::function or a null function pointer yields an empty callback.
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, InplaceCallback> &&
             std::is_invocable_r_v<void, std::decay_t<F>&>)
  InplaceCallback(F&& f) {  // NOLINT(google-explicit-constructor): lambdas convert implicitly
    using D = std::decay_t<F>;
    if constexpr (std::is_pointer_v<D> || is_std_function<D>::value) {
      if (!f) return;
    }
    if constexpr (stored_inline<D>) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      ops_ = &inline_ops<D>;
    } else {
      ::new (static_cast<void*>(storage_)) D*(new D(std::forward<F>(f)));
      ops_ = &heap_ops<D>;
    }
  }

  InplaceCallback(InplaceCallback&& other) noexcept : ops_(other.ops_) {
    if (ops_ != nullptr) ops_->relocate(storage_, other.storage_);
    other.ops_ = nullptr;
  }

  InplaceCallback& operator=(InplaceCallback&& other) noexcept {
    if (this != &other) {
      reset();
      ops_ = other.ops_;
      if (ops_ != nullptr) ops_->relocate(storage_, other.storage_);
      other.ops_ = nullptr;
    }
    return *this;
  }

  InplaceCallback(const InplaceCallback&) = delete;
  InplaceCallback& operator=(const InplaceCallback&) = delete;

  ~InplaceCallback() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  // Precondition: not empty.
  void operator()() { ops_->invoke(storage_); }

  void reset() noexcept {
    if (ops_ != nullptr) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  struct Ops {
    void (*invoke)(void* self);
    // Move-constructs into dst and destroys src.
    void (*relocate)(void* dst, void* src) noexcept;
    void (*destroy)(void* self) noexcept;
  };

  template <class T>
  struct is_std_function : std::false_type {};
  template <class R, class... A>
  struct is_std_function<std::function<R(A...)>> : std::true_type {};

  template <class D>
  static constexpr Ops inline_ops{
      [](void* self) { (*std::launder(static_cast<D*>(self)))(); },
      [](void* dst, void* src) noexcept {
        D* from = std::launder(static_cast<D*>(src));
        ::new (dst) D(std::move(*from));
        from->~D();
      },
      [](void* self) noexcept { std::launder(static_cast<D*>(self))->~D(); },
  };

  template <class D>
  static constexpr Ops heap_ops{
      [](void* self) { (**std::launder(static_cast<D**>(self)))(); },
      [](void* dst, void* src) noexcept {
        ::new (dst) D*(*std::launder(static_cast<D**>(src)));
      },
      [](void* self) noexcept { delete *std::launder(static_cast<D**>(self)); },
  };

  alignas(inline_alignment) unsigned char storage_[inline_capacity];
  const Ops* ops_ = nullptr;  // null when empty; otherwise how to treat storage_
};

}  // namespace herald::timers
