//! Statements on either backend: values bound to `$n` placeholders, rows read by column.
//!
//! PostgreSQL statements go through sqlx's `Any` driver. SQLite writes run on a native
//! connection ([`rusqlite`]) in the calling task: inside an open transaction a statement only
//! touches SQLite's page cache and takes microseconds, whereas sqlx hands every statement to
//! the connection's own thread and back (two context switches each, a dozen per write).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use crate::error::{Error, Result};

/// One value bound to a placeholder. Nulls keep their type, which PostgreSQL needs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// An integer or a typed null.
    Int(Option<i64>),
    /// Text or a typed null.
    Text(Option<&'a str>),
    /// A boolean (an integer 0 or 1 on SQLite).
    Bool(bool),
}

/// Something that can be bound as a [`Value`].
pub(crate) trait Bind {
    /// The value to bind.
    fn value(&self) -> Value<'_>;
}

impl Bind for i64 {
    fn value(&self) -> Value<'_> {
        Value::Int(Some(*self))
    }
}

impl Bind for Option<i64> {
    fn value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}

impl Bind for bool {
    fn value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
}

impl Bind for str {
    fn value(&self) -> Value<'_> {
        Value::Text(Some(self))
    }
}

impl Bind for String {
    fn value(&self) -> Value<'_> {
        Value::Text(Some(self))
    }
}

impl Bind for Option<&str> {
    fn value(&self) -> Value<'_> {
        Value::Text(*self)
    }
}

impl Bind for Option<String> {
    fn value(&self) -> Value<'_> {
        Value::Text(self.as_deref())
    }
}

impl<T: Bind + ?Sized> Bind for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

/// The values of a statement, in placeholder order: `args![number, title]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        &[$($crate::store::sql::Bind::value(&$a)),*][..]
    };
}
pub(crate) use args;

/// One column of a native row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

/// A row read through [`Conn`].
pub(crate) enum Row {
    /// From sqlx.
    Any(AnyRow),
    /// From the native SQLite connection.
    Native(Vec<Cell>),
}

/// Reads typed columns by index, from either kind of row.
pub(crate) trait Cells {
    /// Column `i` as `T`.
    fn get<T: FromCell>(&self, i: usize) -> Result<T>;
}

impl Cells for AnyRow {
    fn get<T: FromCell>(&self, i: usize) -> Result<T> {
        T::from_any(self, i)
    }
}

impl Cells for Row {
    fn get<T: FromCell>(&self, i: usize) -> Result<T> {
        match self {
            Row::Any(r) => T::from_any(r, i),
            Row::Native(cells) => {
                let cell = cells.get(i).ok_or_else(|| Error::Internal(format!("row has no column {i}")))?;
                T::from_cell(cell).ok_or_else(|| Error::Internal(format!("column {i} holds {cell:?}")))
            }
        }
    }
}

/// A Rust type a column converts to.
pub(crate) trait FromCell: Sized {
    /// From a sqlx row.
    fn from_any(r: &AnyRow, i: usize) -> Result<Self>;
    /// From a native cell; `None` when the cell holds another type.
    fn from_cell(c: &Cell) -> Option<Self>;
}

impl FromCell for i64 {
    fn from_any(r: &AnyRow, i: usize) -> Result<Self> {
        Ok(r.try_get(i)?)
    }
    fn from_cell(c: &Cell) -> Option<Self> {
        match c {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromCell for bool {
    fn from_any(r: &AnyRow, i: usize) -> Result<Self> {
        Ok(r.try_get(i)?)
    }
    fn from_cell(c: &Cell) -> Option<Self> {
        i64::from_cell(c).map(|v| v != 0)
    }
}

impl FromCell for String {
    fn from_any(r: &AnyRow, i: usize) -> Result<Self> {
        Ok(r.try_get(i)?)
    }
    fn from_cell(c: &Cell) -> Option<Self> {
        match c {
            Cell::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T>
where
    Option<T>: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    fn from_any(r: &AnyRow, i: usize) -> Result<Self> {
        Ok(r.try_get(i)?)
    }
    fn from_cell(c: &Cell) -> Option<Self> {
        match c {
            Cell::Null => Some(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

/// A connection statements run on: sqlx's (PostgreSQL, and SQLite reads) or the native
/// SQLite writer's, inside its open transaction.
pub(crate) enum Conn<'c> {
    /// A sqlx connection or transaction.
    Any(&'c mut AnyConnection),
    /// The native SQLite connection.
    Native(&'c mut rusqlite::Connection),
}

impl Conn<'_> {
    /// Runs a statement; returns the number of rows it changed.
    pub(crate) async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64> {
        match self {
            Conn::Any(c) => Ok(any_query(sql, args).execute(&mut **c).await?.rows_affected()),
            Conn::Native(c) => Ok(prepared(c, sql, args)?.raw_execute()? as u64),
        }
    }

    /// Every row of a query.
    pub(crate) async fn fetch_all(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Vec<Row>> {
        match self {
            Conn::Any(c) => Ok(any_query(sql, args).fetch_all(&mut **c).await?.into_iter().map(Row::Any).collect()),
            Conn::Native(c) => native_rows(c, sql, args, usize::MAX),
        }
    }

    /// The first row of a query, if any.
    pub(crate) async fn fetch_optional(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Option<Row>> {
        match self {
            Conn::Any(c) => Ok(any_query(sql, args).fetch_optional(&mut **c).await?.map(Row::Any)),
            Conn::Native(c) => Ok(native_rows(c, sql, args, 1)?.pop()),
        }
    }

    /// The first column of every row of a query.
    pub(crate) async fn fetch_column<T: FromCell>(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Vec<T>> {
        self.fetch_all(sql, args).await?.iter().map(|r| r.get(0)).collect()
    }

    /// The first row of a query that must return one.
    pub(crate) async fn fetch_one(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Row> {
        self.fetch_optional(sql, args).await?.ok_or_else(|| Error::Internal(format!("no row from `{sql}`")))
    }

    /// Every row of each query, read as one: on PostgreSQL in a single statement (one round
    /// trip, one snapshot) that returns each part's rows as JSON, turned back into rows with
    /// the part's own columns in order; on SQLite one query after another. Each part numbers
    /// its placeholders from `$1`.
    pub(crate) async fn fetch_parts(&mut self, parts: &[(&str, &[Value<'_>])]) -> Result<Vec<Vec<Row>>> {
        if let Conn::Any(c) = self
            && c.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME
        {
            let (sql, args) = joined(parts)?;
            let row = any_query(&sql, &args).fetch_one(&mut **c).await?;
            return (0..parts.len()).map(|i| json_rows(row.try_get(i)?)).collect();
        }
        let mut out = Vec::with_capacity(parts.len());
        for (sql, args) in parts {
            out.push(self.fetch_all(sql, args).await?);
        }
        Ok(out)
    }
}

/// The parts of a [`Conn::fetch_parts`] batch as one PostgreSQL statement, with its values:
/// one column per part holding its rows as a JSON array of objects (NULL for none), the
/// placeholders of each part moved past those of the parts before it. The aggregate is
/// `json`, not `jsonb`, which would merge duplicate column names and reorder the columns.
/// Row order: PostgreSQL's manual ("Aggregate Expressions") says an aggregate over a sorted
/// subquery "will usually work" when nothing else happens at its level, as here; the cycle
/// test compares every record's lists with SQLite's. A part that uses a value it was not
/// given, or SQL the renumbering cannot read (see [`renumbered`]), is refused.
fn joined<'a>(parts: &[(&str, &[Value<'a>])]) -> Result<(String, Vec<Value<'a>>)> {
    let mut sql = String::from("SELECT ");
    let mut args = Vec::new();
    for (i, (part, values)) in parts.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let (text, highest) = renumbered(part, args.len())?;
        if highest > values.len() {
            return Err(Error::Internal(format!("`{part}` uses ${highest} but is given {} values", values.len())));
        }
        sql.push_str("(SELECT json_agg(p)::text FROM (");
        sql.push_str(&text);
        sql.push_str(") p)");
        args.extend_from_slice(values);
    }
    Ok((sql, args))
}

/// `sql` with each placeholder `$n` outside quoted text made `$(n + offset)`, and the highest
/// `n` it uses. Only plain `'…'` literals are understood: comments, quoted identifiers,
/// dollar quotes and `E'…'` strings are refused rather than misread.
fn renumbered(sql: &str, offset: usize) -> Result<(String, usize)> {
    let unreadable = |what: &str| Error::Internal(format!("`{sql}` has {what}, which parts may not use"));
    let mut out = String::with_capacity(sql.len() + 8);
    let mut highest = 0;
    let mut rest = sql;
    let mut quoted = false;
    let mut before = [' ', ' '];
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        out.push(c);
        match c {
            '\'' if !quoted && matches!(before[1], 'e' | 'E') && !is_word(before[0]) => {
                return Err(unreadable("an E'' string"));
            }
            '\'' => quoted = !quoted,
            _ if quoted => {}
            '"' => return Err(unreadable("a quoted identifier")),
            '-' if rest.starts_with('-') => return Err(unreadable("a comment")),
            '/' if rest.starts_with('*') => return Err(unreadable("a comment")),
            '$' => {
                let digits = rest.find(|d: char| !d.is_ascii_digit()).unwrap_or(rest.len());
                let n = rest[..digits].parse::<usize>().map_err(|_| unreadable("a dollar quote"))?;
                highest = highest.max(n);
                out.push_str(&(n + offset).to_string());
                rest = &rest[digits..];
            }
            _ => {}
        }
        before = [before[1], c];
    }
    Ok((out, highest))
}

/// Whether `c` can be part of an SQL word (so `e` before it does not start an `E''` string).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The rows of one part of a joined statement, from its JSON.
fn json_rows(json: Option<String>) -> Result<Vec<Row>> {
    let Some(json) = json else { return Ok(Vec::new()) };
    let rows: Vec<JsonRow> =
        serde_json::from_str(&json).map_err(|e| Error::Internal(format!("rows of a joined statement: {e}")))?;
    Ok(rows.into_iter().map(|r| Row::Native(r.0)).collect())
}

/// A row given as a JSON object, its values kept in column order.
struct JsonRow(Vec<Cell>);

impl<'de> serde::Deserialize<'de> for JsonRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Columns;
        impl<'de> serde::de::Visitor<'de> for Columns {
            type Value = JsonRow;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row as a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> std::result::Result<JsonRow, M::Error> {
                let mut cells = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some((serde::de::IgnoredAny, cell)) = m.next_entry()? {
                    cells.push(cell);
                }
                Ok(JsonRow(cells))
            }
        }
        d.deserialize_map(Columns)
    }
}

impl<'de> serde::Deserialize<'de> for Cell {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Value;
        impl serde::de::Visitor<'_> for Value {
            type Value = Cell;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("null, an integer, a boolean or text")
            }
            fn visit_unit<E>(self) -> std::result::Result<Cell, E> {
                Ok(Cell::Null)
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Cell, E> {
                Ok(Cell::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Cell, E> {
                i64::try_from(v).map(Cell::Int).map_err(E::custom)
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Cell, E> {
                Ok(Cell::Int(i64::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Cell, E> {
                Ok(Cell::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Cell, E> {
                Ok(Cell::Text(v))
            }
        }
        d.deserialize_any(Value)
    }
}

/// `value` as JSON text, as stored in a `TEXT` column; a value that cannot be (which no
/// record type makes) is an internal error.
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))
}

/// Numbers aggregated into one text (`string_agg`), back as numbers, in order.
pub(crate) fn joined_numbers(joined: Option<String>) -> Result<Vec<i64>> {
    let mut numbers = joined
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().map_err(|e| Error::Internal(format!("aggregated number `{n}`: {e}"))))
        .collect::<Result<Vec<i64>>>()?;
    numbers.sort_unstable();
    Ok(numbers)
}

/// Opens a native connection to an SQLite file: read-write, used by one task at a time,
/// waiting up to 5 s for another process's lock, with room for every statement in its cache.
/// The query planner stability guarantee is on: otherwise SQLite treats a bound `LIMIT $n`
/// (or a `LIKE $n` pattern) as a constant and prepares the statement again at every run.
/// `pragmas` are run after opening.
pub(crate) fn open_native(file: &std::path::Path, pragmas: &str) -> rusqlite::Result<rusqlite::Connection> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(file, flags)?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(128);
    conn.execute_batch(pragmas)?;
    Ok(conn)
}

fn any_query<'a>(sql: &str, args: &[Value<'_>]) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
    args.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())), |q, a| match *a {
        Value::Int(v) => q.bind(v),
        Value::Text(v) => q.bind(v.map(str::to_owned)),
        Value::Bool(v) => q.bind(v),
    })
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Int(Some(v)) => ValueRef::Integer(v),
            Value::Bool(v) => ValueRef::Integer(i64::from(v)),
            Value::Text(Some(v)) => ValueRef::Text(v.as_bytes()),
            Value::Int(None) | Value::Text(None) => ValueRef::Null,
        }))
    }
}

/// The cached statement for `sql` with `args` bound. `$n` binds the n-th value wherever it
/// appears, as sqlx does (SQLite itself numbers `$n` parameters by first appearance).
fn prepared<'c>(
    conn: &'c rusqlite::Connection,
    sql: &str,
    args: &[Value<'_>],
) -> Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(sql)?;
    for index in 1..=stmt.parameter_count() {
        let n = stmt.parameter_name(index).and_then(|name| name.strip_prefix('$')?.parse::<usize>().ok());
        let value = n
            .and_then(|n| args.get(n.checked_sub(1)?))
            .ok_or_else(|| Error::Internal(format!("parameter {index} of `{sql}` has no value")))?;
        stmt.raw_bind_parameter(index, value)?;
    }
    Ok(stmt)
}

/// Up to `limit` rows of a query on the native connection.
fn native_rows(conn: &rusqlite::Connection, sql: &str, args: &[Value<'_>], limit: usize) -> Result<Vec<Row>> {
    use rusqlite::types::ValueRef;
    let mut stmt = prepared(conn, sql, args)?;
    let width = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next()? else { break };
        let cells = (0..width)
            .map(|i| match row.get_ref(i)? {
                ValueRef::Null => Ok(Cell::Null),
                ValueRef::Integer(v) => Ok(Cell::Int(v)),
                ValueRef::Text(v) => Ok(Cell::Text(String::from_utf8_lossy(v).into_owned())),
                other => Err(Error::Internal(format!("column {i} of `{sql}` is {:?}", other.data_type()))),
            })
            .collect::<Result<_>>()?;
        out.push(Row::Native(cells));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_numbers_come_back_in_order() {
        assert_eq!(joined_numbers(Some("12,3,7".into())).unwrap(), [3, 7, 12]);
        assert!(joined_numbers(None).unwrap().is_empty(), "no rows: the aggregate is NULL");
        assert!(joined_numbers(Some(String::new())).unwrap().is_empty());
        assert!(joined_numbers(Some("1,x".into())).is_err());
    }

    fn conn() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT)").unwrap();
        c
    }

    #[tokio::test]
    async fn dollar_placeholders_bind_by_number_not_by_first_appearance() {
        let mut c = conn();
        let mut conn = Conn::Native(&mut c);
        let b: Option<&str> = None;
        conn.execute("INSERT INTO t (b, a) VALUES ($2, $1)", args![7i64, "seven"]).await.unwrap();
        conn.execute("INSERT INTO t (a, b) VALUES ($1, $2)", args![8i64, b]).await.unwrap();
        let rows = conn.fetch_all("SELECT a, b FROM t WHERE a >= $1 AND a <= $1 + 1 ORDER BY a", args![7i64]).await;
        let rows = rows.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get::<i64>(0).unwrap(), 7);
        assert_eq!(rows[0].get::<String>(1).unwrap(), "seven");
        assert_eq!(rows[1].get::<Option<String>>(1).unwrap(), None);
    }

    #[tokio::test]
    async fn bound_limits_do_not_make_statements_prepare_again() {
        let mut c = open_native(std::path::Path::new(":memory:"), "CREATE TABLE t (a INTEGER, b TEXT)").unwrap();
        let sql = "SELECT a FROM t WHERE b LIKE $2 ORDER BY a LIMIT $1";
        for limit in [1i64, 2, 3] {
            Conn::Native(&mut c).fetch_all(sql, args![limit, "x%"]).await.unwrap();
        }
        let stmt = c.prepare_cached(sql).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    #[test]
    fn placeholders_are_renumbered_outside_quoted_text_only() {
        let r = |sql: &str, offset| renumbered(sql, offset).map_err(|e| format!("{e:?}"));
        assert_eq!(r("a = $1 AND b = '$1' AND c = $12", 3).unwrap(), ("a = $4 AND b = '$1' AND c = $15".into(), 12));
        assert_eq!(r("x = 'it''s $2' AND y = $2", 1).unwrap(), ("x = 'it''s $2' AND y = $3".into(), 2));
        assert_eq!(r("SELECT '€' || 'done' || $1", 0).unwrap(), ("SELECT '€' || 'done' || $1".into(), 1));
        assert_eq!(r("SELECT type' x'", 0).unwrap().1, 0, "a word ending in e before a literal is no E-string");
        for unreadable in [
            "SELECT a -- don't\n FROM t WHERE b = $1",
            "SELECT /* $1 */ $2",
            "SELECT E'\\'' || $1",
            "SELECT \"it's\" FROM t WHERE a = $1",
            "SELECT $$ $1 $$",
            "SELECT $",
        ] {
            assert!(r(unreadable, 1).is_err(), "{unreadable} must be refused");
        }
    }

    #[test]
    fn joined_parts_take_their_values_in_turn() {
        let (sql, values) = joined(&[
            ("SELECT a FROM t WHERE a = $1 ORDER BY a", args![1i64]),
            ("SELECT b FROM u WHERE b = $1 OR c = $2", args![2i64, "x"]),
        ])
        .unwrap();
        assert_eq!(
            sql,
            "SELECT (SELECT json_agg(p)::text FROM (SELECT a FROM t WHERE a = $1 ORDER BY a) p), \
             (SELECT json_agg(p)::text FROM (SELECT b FROM u WHERE b = $2 OR c = $3) p)"
        );
        let bound: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(bound, ["Int(Some(1))", "Int(Some(2))", "Text(Some(\"x\"))"]);
        let borrowing = joined(&[("SELECT $2", args![1i64]), ("SELECT $1", args![2i64])]);
        assert!(borrowing.is_err(), "a part may not use the next part's value");
    }

    #[test]
    fn json_rows_keep_their_columns_in_order_and_type() {
        let rows = json_rows(Some(r#"[{"z":7,"a":"it's \"q\"\n✓","m":null,"b":true,"s":"open","s":"done"},{"z":-1,"a":"","m":null,"b":false,"s":"","s":""}]"#.into()))
            .unwrap();
        let Row::Native(first) = &rows[0] else { panic!("a JSON row is native cells") };
        assert_eq!(
            first,
            &[
                Cell::Int(7),
                Cell::Text("it's \"q\"\n✓".into()),
                Cell::Null,
                Cell::Int(1),
                Cell::Text("open".into()),
                Cell::Text("done".into())
            ]
        );
        assert_eq!(rows[1].get::<i64>(0).unwrap(), -1);
        assert!(!rows[1].get::<bool>(3).unwrap());
        assert!(json_rows(None).unwrap().is_empty(), "no rows is NULL from json_agg");
        assert!(json_rows(Some(r#"[{"x":1.5}]"#.into())).is_err(), "no column type reads as a float");
        assert!(json_rows(Some(r#"[{"x":{"y":1}}]"#.into())).is_err(), "nor as nested JSON");
    }

    #[tokio::test]
    async fn a_missing_value_or_a_wrong_type_is_an_error_not_a_guess() {
        let mut c = conn();
        let mut conn = Conn::Native(&mut c);
        assert!(conn.execute("INSERT INTO t (a, b) VALUES ($1, $2)", args![1i64]).await.is_err());
        conn.execute("INSERT INTO t (a, b) VALUES ($1, $2)", args![1i64, "x"]).await.unwrap();
        let row = conn.fetch_one("SELECT a, b FROM t", args![]).await.unwrap();
        assert!(row.get::<String>(0).is_err());
        assert!(row.get::<i64>(1).is_err());
        assert!(row.get::<i64>(2).is_err());
        assert!(conn.fetch_optional("SELECT a FROM t WHERE a = $1", args![2i64]).await.unwrap().is_none());
    }
}
