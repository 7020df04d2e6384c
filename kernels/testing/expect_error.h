// EXPECT_ERROR_CONTAINS(statement, "substring"): the statement throws a
// c10::Error (TORCH_CHECK) whose message contains the substring.
#pragma once

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <string>

#define EXPECT_ERROR_CONTAINS(statement, substring)                        \
  do {                                                                     \
    try {                                                                  \
      statement;                                                           \
      ADD_FAILURE() << "expected an error containing \"" << (substring)    \
                    << "\", nothing was thrown";                           \
    } catch (const c10::Error& e) {                                        \
      const std::string what = e.what_without_backtrace();                 \
      EXPECT_NE(what.find(substring), std::string::npos)                   \
          << "error message \"" << what << "\" lacks \"" << (substring)    \
          << "\"";                                                         \
    }                                                                      \
  } while (0)
