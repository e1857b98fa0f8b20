import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * The flows BI tools and JDBC programs run, against Sluice on the port given:
 * one line "name=value" per result, for test/e2e/drivers.test.ts to check.
 */
public class JdbcFlows {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/sluice?user=sluice&ApplicationName=jdbc-flows";
    try (Connection setup = DriverManager.getConnection(url)) {
      setup.createStatement().execute("CREATE FOREIGN TABLE jdbc_events (k text, n int) SERVER pipelinedb");
      setup.createStatement().execute("CREATE VIEW jdbc_counts AS SELECT k, count(*), sum(n) FROM jdbc_events GROUP BY k");
    }

    // DBeaver's manual-commit mode: a transaction left open all day.
    Connection idle = DriverManager.getConnection(url);
    idle.setAutoCommit(false);
    idle.createStatement().executeQuery("SELECT 1").close();
    Connection other = DriverManager.getConnection(url);
    try (PreparedStatement insert = other.prepareStatement("INSERT INTO jdbc_events VALUES (?, ?)")) {
      for (int i = 0; i < 100; i++) {
        insert.setString(1, "k" + (i % 5));
        insert.setInt(2, i);
        insert.executeUpdate();
      }
    }
    print("counted_while_other_idle_in_transaction", scalar(other, "SELECT sum(count) FROM jdbc_counts"));
    print("select_while_other_idle_in_transaction", scalar(other, "SELECT 1"));
    idle.commit();
    idle.close();

    print("application_name", scalar(other, "SHOW application_name"));

    Statement sleeper = other.createStatement();
    Thread canceller = new Thread(() -> {
      try {
        Thread.sleep(700);
        sleeper.cancel();
      } catch (Exception e) {
        print("cancel_failed", e.getMessage());
      }
    });
    canceller.start();
    try {
      sleeper.execute("SELECT pg_sleep(10)");
      print("cancel", "not cancelled");
    } catch (SQLException e) {
      print("cancel", e.getSQLState());
    }
    canceller.join();

    Statement timed = other.createStatement();
    timed.setQueryTimeout(1);
    try {
      timed.execute("SELECT pg_sleep(10)");
      print("query_timeout", "not cancelled");
    } catch (SQLException e) {
      print("query_timeout", e.getSQLState());
    }

    // setFetchSize: a portal read 10 rows at a time inside a transaction.
    other.setAutoCommit(false);
    Statement cursor = other.createStatement();
    cursor.setFetchSize(10);
    long rows = 0;
    long sum = 0;
    try (ResultSet rs = cursor.executeQuery("SELECT g FROM generate_series(1, 1000) g")) {
      while (rs.next()) {
        rows++;
        sum += rs.getLong(1);
      }
    }
    other.commit();
    print("fetch_size_rows", rows);
    print("fetch_size_sum", sum);
    other.close();
  }

  static String scalar(Connection c, String sql) throws SQLException {
    try (ResultSet rs = c.createStatement().executeQuery(sql)) {
      rs.next();
      return rs.getString(1);
    }
  }

  static synchronized void print(String name, Object value) {
    System.out.println(name + "=" + value);
  }
}
