import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;

/**
 * pgjdbc over TLS with the server certificate verified (sslmode=verify-full
 * against the CA given), and refused against a root that did not sign it.
 */
public class JdbcTls {
  public static void main(String[] args) throws Exception {
    String base = "jdbc:postgresql://127.0.0.1:" + args[0] + "/sluice?user=sluice&sslmode=verify-full&sslrootcert=";
    try (Connection c = DriverManager.getConnection(base + args[1]); ResultSet rs = c.createStatement().executeQuery("SELECT count FROM tls_v")) {
      rs.next();
      System.out.println("count=" + rs.getString(1));
    }
    try (Connection c = DriverManager.getConnection(base + args[2])) {
      System.out.println("untrusted=connected");
    } catch (SQLException e) {
      System.out.println("untrusted=" + e.getSQLState());
    }
  }
}
