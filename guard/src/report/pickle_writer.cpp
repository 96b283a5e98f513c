#include "oomguard/guard/report/pickle_writer.hpp"

#include <bit>
#include <cstdint>
#include <cstring>

namespace oomguard::guard::report {
namespace {

constexpr char kProto = '\x80';
constexpr char kStop = '.';
constexpr char kMark = '(';
constexpr char kEmptyDict = '}';
constexpr char kSetItems = 'u';
constexpr char kEmptyList = ']';
constexpr char kAppends = 'e';
constexpr char kShortBinUnicode = '\x8c';
constexpr char kBinUnicode = 'X';
constexpr char kBinInt = 'J';
constexpr char kLong1 = '\x8a';
constexpr char kBinFloat = 'G';
constexpr char kNewTrue = '\x88';
constexpr char kNewFalse = '\x89';
constexpr char kNone = 'N';

void put_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_string(std::string& out, const std::string& s) {
  if (s.size() < 256) {
    out.push_back(kShortBinUnicode);
    out.push_back(static_cast<char>(s.size()));
  } else {
    out.push_back(kBinUnicode);
    put_le32(out, static_cast<std::uint32_t>(s.size()));
  }
  out += s;
}

void put_signed(std::string& out, std::int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out.push_back(kBinInt);
    put_le32(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
    return;
  }
  // LONG1: little-endian two's complement, as few bytes as keep the sign.
  std::string bytes;
  auto u = static_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  while (bytes.size() > 1) {
    const auto last = static_cast<unsigned char>(bytes.back());
    const auto prev_sign = static_cast<unsigned char>(bytes[bytes.size() - 2]) & 0x80;
    if ((last == 0x00 && prev_sign == 0) || (last == 0xff && prev_sign != 0)) bytes.pop_back();
    else break;
  }
  out.push_back(kLong1);
  out.push_back(static_cast<char>(bytes.size()));
  out += bytes;
}

void put_unsigned(std::string& out, std::uint64_t v) {
  if (v <= static_cast<std::uint64_t>(INT64_MAX)) {
    put_signed(out, static_cast<std::int64_t>(v));
    return;
  }
  // Above INT64_MAX: nine bytes, the last 0 to keep it positive.
  out.push_back(kLong1);
  out.push_back(9);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  out.push_back(0);
}

void put(std::string& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      out.push_back(kNone);
      return;
    case nlohmann::json::value_t::boolean:
      out.push_back(v.get<bool>() ? kNewTrue : kNewFalse);
      return;
    case nlohmann::json::value_t::number_integer:
      put_signed(out, v.get<std::int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned:
      put_unsigned(out, v.get<std::uint64_t>());
      return;
    case nlohmann::json::value_t::number_float: {
      out.push_back(kBinFloat);  // 8 bytes, big-endian
      const auto bits = std::bit_cast<std::uint64_t>(v.get<double>());
      for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
      return;
    }
    case nlohmann::json::value_t::string:
      put_string(out, v.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::array:
      out.push_back(kEmptyList);
      if (v.empty()) return;
      out.push_back(kMark);
      for (const auto& item : v) put(out, item);
      out.push_back(kAppends);
      return;
    case nlohmann::json::value_t::object:
      out.push_back(kEmptyDict);
      if (v.empty()) return;
      out.push_back(kMark);
      for (const auto& [key, item] : v.items()) {
        put_string(out, key);
        put(out, item);
      }
      out.push_back(kSetItems);
      return;
    case nlohmann::json::value_t::binary:
      break;
  }
  put_string(out, v.dump());  // binary: not produced by the report writers
}

}  // namespace

std::string to_pickle(const nlohmann::json& value) {
  std::string out;
  out.push_back(kProto);
  out.push_back(4);
  put(out, value);
  out.push_back(kStop);
  return out;
}

}  // namespace oomguard::guard::report
