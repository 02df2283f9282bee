#include "core/csv.h"

#include <gtest/gtest.h>

namespace fpgaserve {
namespace {

TEST(CsvTest, ParsesHeaderAndRows) {
  auto t = ParseNumericCsv("a,b,class\n1,2.5,0\n-3,4e-1,1\n", "d.csv");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->columns, (std::vector<std::string>{"a", "b", "class"}));
  EXPECT_EQ(t->rows, 2u);
  EXPECT_DOUBLE_EQ(t->at(1, 1), 0.4);
}

TEST(CsvTest, AcceptsCrlfQuotedHeaderAndBlankLines) {
  auto t = ParseNumericCsv("\"x\",\"y\"\r\n1,2\r\n\r\n3,4\r\n", "d.csv");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->columns[0], "x");
  EXPECT_EQ(t->rows, 2u);
}

TEST(CsvTest, EmptyFileFails) {
  auto t = ParseNumericCsv("", "empty.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("empty.csv: empty file"), std::string::npos);
  EXPECT_FALSE(ParseNumericCsv("a,b\n", "h.csv").ok());
}

TEST(CsvTest, MissingColumnNamesLine) {
  auto t = ParseNumericCsv("a,b,c\n1,2,3\n4,5\n", "d.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("d.csv:3: row has 2 cells; expected 3"), std::string::npos)
      << t.status().message();
}

TEST(CsvTest, NonNumericCellNamesColumn) {
  auto t = ParseNumericCsv("a,b\n1,2\n3,oops\n", "d.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("d.csv:3: column 'b': 'oops' is not a finite number"),
            std::string::npos)
      << t.status().message();
  EXPECT_FALSE(ParseNumericCsv("a\nnan\n", "d.csv").ok());
}

TEST(CsvTest, HeaderMustBeNames) {
  EXPECT_FALSE(ParseNumericCsv("1,2\n3,4\n", "d.csv").ok());
  EXPECT_FALSE(ParseNumericCsv("a,a\n3,4\n", "d.csv").ok());
}

TEST(CsvTest, SplitLabelColumn) {
  auto t = ParseNumericCsv("a,class,b\n1,0,2\n3,1,4\n", "d.csv");
  ASSERT_TRUE(t.ok());
  auto d = SplitLabelColumn(*t, "class", "d.csv");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->feature_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d->features, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(d->labels, (std::vector<std::int64_t>{0, 1}));
  auto missing = SplitLabelColumn(*t, "label", "d.csv");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no column named 'label'"), std::string::npos);
  auto bad = ParseNumericCsv("a,class\n1,0.5\n", "d.csv");
  EXPECT_FALSE(SplitLabelColumn(*bad, "class", "d.csv").ok());
}

}  // namespace
}  // namespace fpgaserve
