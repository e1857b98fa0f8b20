import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

/**
 * pgjdbc's CopyManager into a stream, binary and CSV, then the view read back
 * with CopyManager.copyOut; and DatabaseMetaData (what DBeaver and other JDBC
 * tools list) finding the stream and the view. One "name=value" line per result.
 */
public class JdbcCopy {
  /** Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch for binary timestamps. */
  static final long PG_EPOCH_MICROS = 946_684_800_000_000L;

  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/sluice?user=sluice";
    try (Connection c = DriverManager.getConnection(url)) {
      c.createStatement().execute("CREATE FOREIGN TABLE jc (k text, n int4, big int8, f float8, ok bool, ts timestamptz) SERVER pipelinedb");
      c.createStatement().execute("CREATE VIEW jc_v AS SELECT k, count(*) AS rows, sum(n) AS n, sum(big) AS big, sum(f) AS f, count(*) FILTER (WHERE ok) AS oks, max(ts) AS last FROM jc GROUP BY k");
      CopyManager copy = c.unwrap(PGConnection.class).getCopyAPI();
      long binary = copy.copyIn("COPY jc FROM STDIN (FORMAT binary)", new ByteArrayInputStream(binaryRows(3000)));
      System.out.println("binary=" + binary);
      StringBuilder csv = new StringBuilder("k,n,big,f,ok,ts\n");
      for (int i = 0; i < 1000; i++) csv.append("k").append(i % 3).append(',').append(i).append(",1,0.5,").append(i % 2 == 0).append(",2026-01-01 00:00:00+00\n");
      long text = copy.copyIn("COPY jc FROM STDIN (FORMAT csv, HEADER match)", new ByteArrayInputStream(csv.toString().getBytes(StandardCharsets.UTF_8)));
      System.out.println("csv=" + text);
      StringWriter out = new StringWriter();
      copy.copyOut("COPY (SELECT k, rows, n, big, f, oks, extract(epoch FROM last)::int8 FROM jc_v ORDER BY k) TO STDOUT (FORMAT csv)", out);
      String[] lines = out.toString().trim().split("\n");
      for (int i = 0; i < lines.length; i++) System.out.println("view" + i + "=" + lines[i]);
      DatabaseMetaData meta = c.getMetaData();
      try (ResultSet rs = meta.getTables(null, "public", "jc%", null)) {
        StringBuilder tables = new StringBuilder();
        while (rs.next()) tables.append(rs.getString("TABLE_NAME")).append(':').append(rs.getString("TABLE_TYPE")).append(' ');
        System.out.println("tables=" + tables.toString().trim());
      }
      try (ResultSet rs = meta.getColumns(null, "public", "jc_v", null)) {
        StringBuilder columns = new StringBuilder();
        while (rs.next()) columns.append(rs.getString("COLUMN_NAME")).append(':').append(rs.getString("TYPE_NAME")).append(' ');
        System.out.println("columns=" + columns.toString().trim());
      }
    }
  }

  /** COPY binary: signature, flags, header extension, then each tuple's fields as length + bytes, then -1. */
  static byte[] binaryRows(int count) throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    out.write(new byte[] {'P', 'G', 'C', 'O', 'P', 'Y', '\n', (byte) 0xff, '\r', '\n', 0});
    out.writeInt(0);
    out.writeInt(0);
    for (int i = 0; i < count; i++) {
      out.writeShort(6);
      byte[] k = ("k" + (i % 3)).getBytes(StandardCharsets.UTF_8);
      out.writeInt(k.length);
      out.write(k);
      out.writeInt(4);
      out.writeInt(i);
      out.writeInt(8);
      out.writeLong(1L << 40);
      if (i % 10 == 0) {
        out.writeInt(-1); // NULL
      } else {
        out.writeInt(8);
        out.writeDouble(0.25);
      }
      out.writeInt(1);
      out.writeByte(i % 2);
      out.writeInt(8);
      out.writeLong(Date2000.micros(2026, i));
    }
    out.writeShort(-1);
    return bytes.toByteArray();
  }

  static class Date2000 {
    /** 2026-01-01 00:00:00 UTC plus `seconds`, in microseconds since 2000-01-01. */
    static long micros(int year, int seconds) {
      long epochSeconds = java.time.OffsetDateTime.of(year, 1, 1, 0, 0, 0, 0, java.time.ZoneOffset.UTC).toEpochSecond() + seconds;
      return epochSeconds * 1_000_000L - PG_EPOCH_MICROS;
    }
  }
}
