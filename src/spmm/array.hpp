// array.hpp: the storage of a sparse matrix's arrays. It owns a std::vector, or it is a
// read-only view of memory owned elsewhere (a network held once per node in shared memory).
// Element access is a pointer and a size either way; growing or changing a view is an error.
// Copying always makes an owning copy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <vector>

namespace sdnn {

template <class T>
class Array {
 public:
  using value_type = T;
  using iterator = T*;
  using const_iterator = const T*;

  Array() = default;
  explicit Array(std::size_t n, const T& value = T()) : owned_(n, value) { refresh(); }
  Array(std::initializer_list<T> values) : owned_(values) { refresh(); }
  Array(const Array& other) : owned_(other.begin(), other.end()) { refresh(); }
  Array(Array&& other) noexcept { take(other); }
  Array& operator=(const Array& other) {
    if (this != &other) {
      owned_.assign(other.begin(), other.end());
      view_ = false;
      refresh();
    }
    return *this;
  }
  Array& operator=(Array&& other) noexcept {
    if (this != &other) take(other);
    return *this;
  }
  Array& operator=(std::initializer_list<T> values) {
    owned_.assign(values);
    view_ = false;
    refresh();
    return *this;
  }

  // A read-only view of `size` elements at `data` (which must outlive it).
  static Array view(const T* data, std::size_t size) {
    Array a;
    a.data_ = const_cast<T*>(data);
    a.size_ = size;
    a.view_ = true;
    return a;
  }
  bool is_view() const { return view_; }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T& back() { return data_[size_ - 1]; }
  const T& back() const { return data_[size_ - 1]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

  void resize(std::size_t n) { owner().resize(n), refresh(); }
  void resize(std::size_t n, const T& value) { owner().resize(n, value), refresh(); }
  void assign(std::size_t n, const T& value) { owner().assign(n, value), refresh(); }
  template <class It>
  void assign(It first, It last) {
    std::vector<T> copy(first, last);  // first..last may point into this array
    owner().swap(copy);
    refresh();
  }
  void push_back(const T& value) { owner().push_back(value), refresh(); }
  void reserve(std::size_t n) { owner().reserve(n), refresh(); }
  void clear() { owner().clear(), refresh(); }

  friend bool operator==(const Array& a, const Array& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }
  friend bool operator!=(const Array& a, const Array& b) { return !(a == b); }
  friend bool operator==(const Array& a, const std::vector<T>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }
  friend bool operator==(const std::vector<T>& b, const Array& a) { return a == b; }

 private:
  std::vector<T>& owner() {
    if (view_) throw std::logic_error("a view of shared memory cannot be changed");
    return owned_;
  }
  void refresh() {
    if (!view_) {
      data_ = owned_.data();
      size_ = owned_.size();
    }
  }
  void take(Array& other) noexcept {
    owned_ = std::move(other.owned_);
    view_ = other.view_;
    data_ = view_ ? other.data_ : owned_.data();
    size_ = view_ ? other.size_ : owned_.size();
    other.owned_.clear();
    other.view_ = false;
    other.data_ = nullptr;
    other.size_ = 0;
  }

  std::vector<T> owned_;
  T* data_ = nullptr;
  std::size_t size_ = 0;
  bool view_ = false;
};

}  // namespace sdnn
