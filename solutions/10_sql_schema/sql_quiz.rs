// sql_quiz: a small shop, from schema to report
//
// Everything in this topic at once. The schema guards the data: users, products, orders, and
// the order lines that join orders to products (many-to-many, one line per product in an
// order). Money is whole cents in integers, never floats, and each line keeps the unit price
// it was sold at, because prices change. `query_as` is the row mapping an ORM gives you: any
// `T: FromRow`, every row. The revenue report answers, per product: units sold and revenue in
// cents, from paid orders only (a refunded order counts for nothing), with every product
// listed, including those never sold.
//
// Production caveat: SQLite's column types are only preferences ("type affinity",
// https://sqlite.org/datatype3.html): an `INTEGER` column stores `19.99` or `'free'` as given,
// and `CHECK (price_cents >= 0)` passes for `'free'`, since text sorts after every number.
// A `STRICT` table (SQLite 3.37+, https://sqlite.org/stricttables.html) refuses them with
// SQLITE_CONSTRAINT_DATATYPE. PostgreSQL checks every value against its column's type, and
// enforces foreign keys on every connection.
//
// What to do:
// 1. `SCHEMA`: the columns are given; add the rules the tests list (keys, NOT NULL, UNIQUE
//    emails, CHECKs, STRICT tables, foreign keys, a line deleted with its order, a product or
//    a user with sales that cannot be deleted), and switch foreign keys on.
// 2. `query_as`: map every row, not only the first one.
// 3. `REVENUE_SQL`: the report described above, by product id.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, Params, Row};

pub trait FromRow: Sized {
    fn from_row(row: &Row) -> rusqlite::Result<Self>;
}

// The rules live in the schema, where every writer meets them. STRICT makes the declared
// types binding; foreign keys are per connection and must be switched on outside a transaction.
pub const SCHEMA: &str = "
    PRAGMA foreign_keys = ON;
    CREATE TABLE users (
        id    INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE
    ) STRICT;
    CREATE TABLE products (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        price_cents INTEGER NOT NULL CHECK (price_cents >= 0)
    ) STRICT;
    CREATE TABLE orders (
        id      INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        status  TEXT NOT NULL CHECK (status IN ('paid', 'refunded'))
    ) STRICT;
    CREATE TABLE order_lines (
        order_id         INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        product_id       INTEGER NOT NULL REFERENCES products(id),
        quantity         INTEGER NOT NULL CHECK (quantity > 0),
        unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
        PRIMARY KEY (order_id, product_id)
    ) STRICT;
";

pub fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// Runs `sql` with `params` and maps every row with `T::from_row`.
pub fn query_as<T: FromRow, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, T::from_row)?;
    rows.collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductRevenue {
    pub product_id: i64,
    pub name: String,
    pub units: i64,
    pub revenue_cents: i64,
}

impl FromRow for ProductRevenue {
    fn from_row(row: &Row) -> rusqlite::Result<Self> {
        Ok(ProductRevenue {
            product_id: row.get("product_id")?,
            name: row.get("name")?,
            units: row.get("units")?,
            revenue_cents: row.get("revenue_cents")?,
        })
    }
}

// LEFT JOIN keeps unsold products; the paid filter sits in the ON clause (in WHERE it would
// drop them again); each line counts at the price it was sold for; sum() of nothing is NULL.
pub const REVENUE_SQL: &str = "
    SELECT p.id AS product_id, p.name AS name,
           coalesce(sum(l.quantity), 0) AS units,
           coalesce(sum(l.quantity * l.unit_price_cents), 0) AS revenue_cents
    FROM products p
    LEFT JOIN order_lines l
           ON l.product_id = p.id
          AND l.order_id IN (SELECT id FROM orders WHERE status = 'paid')
    GROUP BY p.id
    ORDER BY p.id
";

pub fn revenue_report(conn: &Connection) -> rusqlite::Result<Vec<ProductRevenue>> {
    query_as(conn, REVENUE_SQL, [])
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    /// A connection that starts like the SQLite of an OS: foreign keys off.
    fn shop() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        init(&conn).expect("SCHEMA runs");
        conn
    }

    /// Keyboard's price went up after order 3 (3 sold at the new price); Stand was never sold;
    /// order 3 was refunded.
    const SHOP_A: &str = "
        INSERT INTO users (id, email) VALUES (1, 'ann@example.com'), (2, 'bob@example.com');
        INSERT INTO products (id, name, price_cents) VALUES
            (1, 'Keyboard', 4999), (2, 'Mouse', 1999), (3, 'Cable', 599), (4, 'Stand', 2999);
        INSERT INTO orders (id, user_id, status) VALUES (1, 1, 'paid'), (2, 2, 'paid'),
            (3, 2, 'refunded');
        INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents) VALUES
            (1, 1, 1, 4999), (1, 3, 2, 599), (2, 2, 3, 1999), (2, 3, 1, 599), (3, 1, 2, 4999);
        UPDATE products SET price_cents = 5499 WHERE id = 1;
        INSERT INTO orders (id, user_id, status) VALUES (4, 1, 'paid');
        INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents) VALUES
            (4, 1, 3, 5499);
    ";

    /// Pot's only sale was refunded; one Mug was sold at a discount, two at full price.
    const SHOP_B: &str = "
        INSERT INTO users (id, email) VALUES (1, 'cy@example.com'), (2, 'di@example.com');
        INSERT INTO products (id, name, price_cents) VALUES
            (1, 'Tea', 450), (2, 'Mug', 1200), (3, 'Pot', 3500);
        INSERT INTO orders (id, user_id, status) VALUES (1, 1, 'refunded'), (2, 2, 'paid'),
            (3, 1, 'paid');
        INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents) VALUES
            (1, 3, 1, 3500), (1, 2, 2, 1200), (2, 2, 1, 1000), (3, 1, 10, 450), (3, 2, 2, 1200);
    ";

    fn seeded(data: &str) -> Connection {
        let conn = shop();
        conn.execute_batch(data)
            .expect("the test data fits the schema");
        conn
    }

    fn line(id: i64, name: &str, units: i64, revenue_cents: i64) -> ProductRevenue {
        ProductRevenue {
            product_id: id,
            name: name.into(),
            units,
            revenue_cents,
        }
    }

    /// Runs raw SQL, as a script or a console would, and checks the refusal's extended code.
    fn refused(conn: &Connection, sql: &str, codes: &[(i32, &str)]) {
        let names: Vec<&str> = codes.iter().map(|c| c.1).collect();
        match conn.execute_batch(sql) {
            Ok(()) => panic!("{sql}\nwas accepted: the schema must refuse it with {names:?}"),
            Err(e) => {
                let code = e.sqlite_error().map(|e| e.extended_code).unwrap_or(0);
                assert!(
                    codes.iter().any(|c| c.0 == code),
                    "{sql}\nexpected {names:?}, got {e} (extended code {code})"
                );
            }
        }
    }

    const UNIQUE: (i32, &str) = (ffi::SQLITE_CONSTRAINT_UNIQUE, "SQLITE_CONSTRAINT_UNIQUE");
    const PRIMARY_KEY: (i32, &str) = (ffi::SQLITE_CONSTRAINT_PRIMARYKEY, "_PRIMARYKEY");
    const NOT_NULL: (i32, &str) = (ffi::SQLITE_CONSTRAINT_NOTNULL, "SQLITE_CONSTRAINT_NOTNULL");
    const CHECK: (i32, &str) = (ffi::SQLITE_CONSTRAINT_CHECK, "SQLITE_CONSTRAINT_CHECK");
    const FOREIGN_KEY: (i32, &str) = (ffi::SQLITE_CONSTRAINT_FOREIGNKEY, "_FOREIGNKEY");
    const DATATYPE: (i32, &str) = (ffi::SQLITE_CONSTRAINT_DATATYPE, "_DATATYPE");

    #[test]
    fn the_schema_refuses_bad_rows() {
        for data in [SHOP_A, SHOP_B] {
            let conn = seeded(data);
            let cases: [(&str, &[(i32, &str)]); 19] = [
                (
                    "INSERT INTO users (id, email) SELECT 9, email FROM users",
                    &[UNIQUE],
                ),
                ("INSERT INTO users (email) VALUES (NULL)", &[NOT_NULL]),
                (
                    "INSERT INTO products (name, price_cents) VALUES ('Pen', -1)",
                    &[CHECK],
                ),
                (
                    "INSERT INTO products (name, price_cents) VALUES (NULL, 100)",
                    &[NOT_NULL],
                ),
                (
                    "INSERT INTO products (name, price_cents) VALUES ('Pen', NULL)",
                    &[NOT_NULL],
                ),
                (
                    "INSERT INTO orders (user_id, status) VALUES (NULL, 'paid')",
                    &[NOT_NULL],
                ),
                ("UPDATE order_lines SET quantity = NULL", &[NOT_NULL]),
                (
                    "UPDATE order_lines SET unit_price_cents = NULL",
                    &[NOT_NULL],
                ),
                (
                    "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)
                     VALUES (NULL, 1, 1, 100)",
                    &[NOT_NULL],
                ),
                (
                    "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)
                     VALUES (2, NULL, 1, 100)",
                    &[NOT_NULL],
                ),
                (
                    "INSERT INTO orders (user_id, status) VALUES (99, 'paid')",
                    &[FOREIGN_KEY],
                ),
                (
                    "INSERT INTO orders (user_id, status) VALUES (1, 'shipped')",
                    &[CHECK],
                ),
                (
                    "INSERT INTO orders (user_id, status) VALUES (1, NULL)",
                    &[NOT_NULL],
                ),
                (
                    "UPDATE order_lines SET quantity = 0 WHERE order_id = 2",
                    &[CHECK],
                ),
                ("UPDATE order_lines SET unit_price_cents = -5", &[CHECK]),
                (
                    "UPDATE order_lines SET quantity = 'two'",
                    &[DATATYPE, CHECK],
                ),
                (
                    "INSERT INTO order_lines SELECT order_id, product_id, 1, 100
                     FROM order_lines LIMIT 1",
                    &[PRIMARY_KEY, UNIQUE],
                ),
                (
                    "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)
                     VALUES (2, 99, 1, 100)",
                    &[FOREIGN_KEY],
                ),
                (
                    "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)
                     VALUES (99, 1, 1, 100)",
                    &[FOREIGN_KEY],
                ),
            ];
            for (sql, codes) in cases {
                refused(&conn, sql, codes);
            }
        }
    }

    #[test]
    fn money_is_whole_cents() {
        let conn = seeded(SHOP_A);
        for value in ["19.99", "'free'", "X'00'"] {
            refused(
                &conn,
                &format!("INSERT INTO products (name, price_cents) VALUES ('Pen', {value})"),
                &[DATATYPE, CHECK],
            );
            refused(
                &conn,
                &format!("UPDATE order_lines SET unit_price_cents = {value} WHERE order_id = 1"),
                &[DATATYPE, CHECK],
            );
        }
        conn.execute_batch("INSERT INTO products (name, price_cents) VALUES ('Pen', 0)")
            .expect("a free pen (0 cents) is fine");
    }

    #[test]
    fn deleting_keeps_the_books_consistent() {
        for (data, order, lines_left) in [(SHOP_A, 1, 4), (SHOP_B, 3, 3)] {
            let conn = seeded(data);
            conn.execute("DELETE FROM orders WHERE id = ?1", [order])
                .expect("an order can be deleted, and its lines go with it");
            let lines: i64 = conn
                .query_row("SELECT count(*) FROM order_lines", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                lines, lines_left,
                "deleting order {order} deletes its lines: expected {lines_left} lines left"
            );
            refused(&conn, "DELETE FROM products WHERE id = 2", &[FOREIGN_KEY]);
            refused(&conn, "DELETE FROM users WHERE id = 2", &[FOREIGN_KEY]);
        }
        let conn = seeded(SHOP_A);
        conn.execute_batch("DELETE FROM products WHERE id = 4")
            .expect("Stand was never sold, so it can be deleted");
    }

    #[test]
    fn the_report_counts_paid_lines_at_their_sale_price() {
        let cases = [
            (
                SHOP_A,
                vec![
                    line(1, "Keyboard", 4, 4999 + 3 * 5499),
                    line(2, "Mouse", 3, 3 * 1999),
                    line(3, "Cable", 3, 3 * 599),
                    line(4, "Stand", 0, 0),
                ],
            ),
            (
                SHOP_B,
                vec![
                    line(1, "Tea", 10, 4500),
                    line(2, "Mug", 3, 1000 + 2 * 1200),
                    line(3, "Pot", 0, 0),
                ],
            ),
        ];
        for (data, want) in cases {
            let conn = seeded(data);
            // The report is the SQL itself: run it the way the tests run any query.
            let got = query_as::<ProductRevenue, _>(&conn, REVENUE_SQL, [])
                .expect("REVENUE_SQL runs and every row maps to ProductRevenue");
            assert_eq!(
                got, want,
                "REVENUE_SQL: expected every product by id, with units and revenue from paid \
                 orders at the price on each line (sum of quantity * unit_price_cents), and \
                 0/0 for products with no paid sale"
            );
            assert_eq!(
                revenue_report(&conn).expect("revenue_report runs REVENUE_SQL"),
                want,
                "revenue_report returns what REVENUE_SQL computes"
            );
        }
    }

    #[test]
    fn the_report_of_an_empty_shop() {
        let conn = shop();
        assert_eq!(
            revenue_report(&conn).expect("the report of an empty shop runs"),
            vec![],
            "no products, no lines"
        );
        conn.execute_batch(
            "INSERT INTO products (id, name, price_cents) VALUES (7, 'Lamp', 2500), (8, 'Rug', 1)",
        )
        .unwrap();
        let sql_rows = query_as::<ProductRevenue, _>(&conn, REVENUE_SQL, []).expect(
            "units and revenue of a product never sold are sum() of no rows, which is NULL: \
             use coalesce(sum(..), 0) so they read as 0",
        );
        assert_eq!(
            sql_rows,
            vec![line(7, "Lamp", 0, 0), line(8, "Rug", 0, 0)],
            "REVENUE_SQL: products that were never sold: 0 units, 0 cents"
        );
        assert_eq!(
            revenue_report(&conn).expect("revenue_report runs REVENUE_SQL"),
            vec![line(7, "Lamp", 0, 0), line(8, "Rug", 0, 0)],
            "products that were never sold: 0 units, 0 cents"
        );
    }

    struct Email(i64, String);

    impl FromRow for Email {
        fn from_row(row: &Row) -> rusqlite::Result<Self> {
            Ok(Email(row.get(0)?, row.get(1)?))
        }
    }

    #[test]
    fn query_as_maps_every_row() {
        for (data, after, want) in [
            (
                SHOP_A,
                0,
                vec![(1, "ann@example.com"), (2, "bob@example.com")],
            ),
            (SHOP_B, 1, vec![(2, "di@example.com")]),
            (SHOP_B, 2, vec![]),
        ] {
            let conn = seeded(data);
            let sql = "SELECT id, email FROM users WHERE id > ?1 ORDER BY id";
            let got: Vec<(i64, String)> = query_as::<Email, _>(&conn, sql, [after])
                .unwrap()
                .into_iter()
                .map(|Email(id, email)| (id, email))
                .collect();
            let want: Vec<(i64, String)> = want.into_iter().map(|(i, e)| (i, e.into())).collect();
            assert_eq!(got, want, "users after id {after}: expected {want:?}");
        }
        let conn = shop();
        let broken = query_as::<Email, _>(&conn, "SELECT id, email FROM customers", []);
        assert!(broken.is_err(), "a query on a missing table is an error");
    }

    #[test]
    fn a_row_that_fails_to_map_is_an_error() {
        // Skipping the bad row would return a shorter list that looks complete.
        for (rows, bad) in [(3, 2), (6, 4)] {
            let values: Vec<String> = (1..=rows)
                .map(|i| match i == bad {
                    true => format!("({i}, NULL)"),
                    false => format!("({i}, 'u{i}@example.com')"),
                })
                .collect();
            let sql = format!("SELECT * FROM (VALUES {}) ORDER BY 1", values.join(", "));
            let conn = shop();
            assert!(
                query_as::<Email, _>(&conn, &sql, []).is_err(),
                "row {bad} of {rows} has a NULL email that cannot map to String: expected Err, \
                 not the other rows"
            );
        }
    }
}
