import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.Date;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.UUID;

/**
 * Prepared inserts into a stream with the types pgjdbc sends in binary once a
 * statement is server-prepared (prepareThreshold=-1: from the first execution),
 * then the row as the view keeps it, one "name=value" line per column.
 */
public class JdbcTypes {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/sluice?user=sluice&prepareThreshold=-1";
    try (Connection c = DriverManager.getConnection(url)) {
      c.createStatement().execute("CREATE FOREIGN TABLE jt (n numeric, b bytea, u uuid, ts timestamptz, d date, i4s int4[], f8 float8, i8 int8, flag bool, t text) SERVER pipelinedb");
      c.createStatement().execute("CREATE VIEW jt_v AS SELECT n, b, u, ts, d, i4s, f8, i8, flag, t FROM jt");
      try (PreparedStatement insert = c.prepareStatement("INSERT INTO jt VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
        for (int round = 0; round < 2; round++) {
          insert.setBigDecimal(1, new BigDecimal("12345678901234567890.125"));
          insert.setBytes(2, new byte[] {0, 1, (byte) 0xff});
          insert.setObject(3, UUID.fromString("0b7e5f4c-1d2a-4c3b-9a8e-7f6d5c4b3a21"));
          insert.setObject(4, OffsetDateTime.of(2026, 12, 4, 10, 30, 0, 123456000, ZoneOffset.ofHours(2)));
          insert.setDate(5, Date.valueOf("2026-02-28"));
          insert.setArray(6, c.createArrayOf("int4", new Integer[] {1, null, 3}));
          insert.setDouble(7, 0.1 + 0.2);
          insert.setLong(8, Long.MIN_VALUE);
          insert.setBoolean(9, true);
          insert.setString(10, "café");
          insert.executeUpdate();
        }
      }
      c.createStatement().execute("SET TimeZone = 'UTC'");
      try (ResultSet rs = c.createStatement().executeQuery("SELECT count(*) OVER () AS rows, n::text, encode(b, 'hex') AS b, u::text, ts::text, d::text, i4s::text, f8::text, i8::text, flag::text, t FROM jt_v LIMIT 1")) {
        rs.next();
        for (int i = 1; i <= rs.getMetaData().getColumnCount(); i++) System.out.println(rs.getMetaData().getColumnLabel(i) + "=" + rs.getString(i));
      }
    }
  }
}
