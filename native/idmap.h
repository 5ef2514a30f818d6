// Open-addressing hash map from order id (int64, > 0) to pool slot (int32).
// Linear probing with Fibonacci hashing and backward-shift deletion: no tombstones, no per-entry allocation.
// Key 0 marks an empty bucket, so ids <= 0 are never stored and never found.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

class IdMap {
public:
    IdMap() { rehash(1024); }

    void reserve(size_t n) {
        size_t cap = keys_.size();
        while (cap * 7 < n * 10) cap *= 2;
        if (cap != keys_.size()) rehash(cap);
    }

    // The slot stored for `key`, or -1.
    int32_t get(int64_t key) const {
        if (key <= 0) return -1;
        for (size_t i = home(key);; i = (i + 1) & mask_) {
            if (keys_[i] == key) return vals_[i];
            if (keys_[i] == 0) return -1;
        }
    }

    bool contains(int64_t key) const { return get(key) != -1; }

    // Insert or overwrite; `key` must be > 0.
    void put(int64_t key, int32_t val) {
        if ((size_ + 1) * 10 > keys_.size() * 7) rehash(keys_.size() * 2);
        size_t i = home(key);
        while (keys_[i] != 0 && keys_[i] != key) i = (i + 1) & mask_;
        if (keys_[i] == 0) ++size_;
        keys_[i] = key;
        vals_[i] = val;
    }

    // Remove `key`; false when it was absent.
    bool erase(int64_t key) {
        if (key <= 0) return false;
        size_t i = home(key);
        while (keys_[i] != key) {
            if (keys_[i] == 0) return false;
            i = (i + 1) & mask_;
        }
        for (size_t j = (i + 1) & mask_; keys_[j] != 0; j = (j + 1) & mask_) {
            size_t h = home(keys_[j]);
            bool stays = (i <= j) ? (i < h && h <= j) : (i < h || h <= j);
            if (!stays) {
                keys_[i] = keys_[j];
                vals_[i] = vals_[j];
                i = j;
            }
        }
        keys_[i] = 0;
        --size_;
        return true;
    }

    size_t size() const { return size_; }
    size_t capacity() const { return keys_.size(); }
    int64_t key_at(size_t i) const { return keys_[i]; }  // 0 for an empty bucket
    int32_t val_at(size_t i) const { return vals_[i]; }

private:
    size_t home(int64_t key) const {
        return static_cast<size_t>((static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ull) >> shift_);
    }

    void rehash(size_t cap) {
        std::vector<int64_t> old_keys(cap, 0);
        std::vector<int32_t> old_vals(cap, 0);
        old_keys.swap(keys_);
        old_vals.swap(vals_);
        mask_ = cap - 1;
        shift_ = 64;
        for (size_t c = cap; c > 1; c >>= 1) --shift_;
        size_ = 0;
        for (size_t i = 0; i < old_keys.size(); ++i)
            if (old_keys[i] != 0) put(old_keys[i], old_vals[i]);
    }

    std::vector<int64_t> keys_;
    std::vector<int32_t> vals_;
    size_t mask_ = 0;
    unsigned shift_ = 64;
    size_t size_ = 0;
};
