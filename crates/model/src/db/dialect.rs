//! How each database holds gold's values: cells bound as parameters and read back, per
//! column type (see [`super::table`]).
//!
//! PostgreSQL keeps every type natively. SQLite keeps decimals with `NUMERIC` affinity (integral
//! values as integers, others as their exact text; read back rounded to their column's scale:
//! every value stocklake stores has at most 15 significant digits, so the round trip is exact),
//! times as RFC 3339 text in UTC with microseconds (which sorts as time does), dates as
//! `YYYY-MM-DD`, booleans as 0/1 and JSON as text.

use std::borrow::Cow;
use std::error::Error;
use std::str::FromStr;

use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::table::{Cell, Col};

/// A time as SQLite stores it.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A time SQLite stores, read back.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A decimal as SQLite stores it.
pub struct Dec(pub Decimal);

impl rusqlite::ToSql for Dec {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(dec_value(self.0)))
    }
}

/// Integral values as integers, others as their exact text (`NUMERIC` affinity converts).
fn dec_value(d: Decimal) -> Value {
    if d.fract().is_zero()
        && let Some(i) = d.to_i64()
    {
        return Value::Integer(i);
    }
    Value::Text(d.normalize().to_string())
}

/// A decimal SQLite stores, read back at its column's scale.
pub fn sqlite_dec(v: ValueRef<'_>, scale: u32) -> Option<Decimal> {
    match v {
        ValueRef::Null | ValueRef::Blob(_) => None,
        ValueRef::Integer(v) => Some(Decimal::from(v)),
        ValueRef::Real(v) => Decimal::from_f64(v).map(|d| d.round_dp(scale)),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| Decimal::from_str(s).ok()),
    }
}

impl rusqlite::ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Cell::Null => ToSqlOutput::Owned(Value::Null),
            Cell::I16(v) => ToSqlOutput::Owned(Value::Integer(i64::from(*v))),
            Cell::I32(v) => ToSqlOutput::Owned(Value::Integer(i64::from(*v))),
            Cell::I64(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            Cell::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Cell::Dec(d) => ToSqlOutput::Owned(dec_value(*d)),
            Cell::Ts(t) => ToSqlOutput::Owned(Value::Text(ts(*t))),
            Cell::Date(d) => ToSqlOutput::Owned(Value::Text(d.format("%Y-%m-%d").to_string())),
            Cell::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Cell::F64(v) => ToSqlOutput::Owned(Value::Real(*v)),
            Cell::Json(j) => ToSqlOutput::Owned(Value::Text(j.to_string())),
        })
    }
}

/// Column `i` of a SQLite row as a cell of type `col`.
pub fn sqlite_cell(r: &rusqlite::Row<'_>, i: usize, col: Col) -> rusqlite::Result<Cell<'static>> {
    let v = r.get_ref(i)?;
    if matches!(v, ValueRef::Null) {
        return Ok(Cell::Null);
    }
    let int = match v {
        ValueRef::Integer(x) => Some(x),
        ValueRef::Real(x) => Some(x as i64),
        _ => None,
    };
    let text = match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    };
    let cell = match col {
        Col::I16 => int.map(|x| Cell::I16(x as i16)),
        Col::I32 => int.map(|x| Cell::I32(x as i32)),
        Col::I64 => int.map(Cell::I64),
        Col::Text => text.map(|t| Cell::Text(Cow::Owned(t.to_string()))),
        Col::Dec(s) => sqlite_dec(v, s as u32).map(Cell::Dec),
        Col::Ts => text.and_then(parse_ts).map(Cell::Ts),
        Col::Date => text
            .and_then(|t| t.parse::<NaiveDate>().ok())
            .map(Cell::Date),
        Col::Bool => int.map(|x| Cell::Bool(x != 0)),
        Col::F64 => match v {
            ValueRef::Real(x) => Some(Cell::F64(x)),
            ValueRef::Integer(x) => Some(Cell::F64(x as f64)),
            _ => None,
        },
        Col::Json => text.map(|t| {
            Cell::Json(Cow::Owned(
                serde_json::from_str(t).unwrap_or(serde_json::Value::Null),
            ))
        }),
    };
    Ok(cell.unwrap_or(Cell::Null))
}

/// PostgreSQL's type for a column.
pub fn pg_type(col: Col) -> Type {
    match col {
        Col::I16 => Type::INT2,
        Col::I32 => Type::INT4,
        Col::I64 => Type::INT8,
        Col::Text => Type::TEXT,
        Col::Dec(_) => Type::NUMERIC,
        Col::Ts => Type::TIMESTAMPTZ,
        Col::Date => Type::DATE,
        Col::Bool => Type::BOOL,
        Col::F64 => Type::FLOAT8,
        Col::Json => Type::JSONB,
    }
}

impl ToSql for Cell<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::I16(v) => v.to_sql(ty, out),
            Cell::I32(v) => v.to_sql(ty, out),
            Cell::I64(v) => v.to_sql(ty, out),
            Cell::Text(t) => t.as_ref().to_sql(ty, out),
            Cell::Dec(d) => d.to_sql(ty, out),
            Cell::Ts(t) => t.to_sql(ty, out),
            Cell::Date(d) => d.to_sql(ty, out),
            Cell::Bool(b) => b.to_sql(ty, out),
            Cell::F64(v) => v.to_sql(ty, out),
            Cell::Json(j) => j.as_ref().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // each cell checks its own type against the column's as it is written
        true
    }

    to_sql_checked!();
}

/// Column `i` of a PostgreSQL row as a cell of type `col` (integers of any width).
pub fn pg_cell(
    r: &tokio_postgres::Row,
    i: usize,
    col: Col,
) -> Result<Cell<'static>, tokio_postgres::Error> {
    let ty = r.columns()[i].type_().clone();
    let int = || -> Result<Option<i64>, tokio_postgres::Error> {
        Ok(if ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map(i64::from)
        } else if ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map(i64::from)
        } else {
            r.try_get::<_, Option<i64>>(i)?
        })
    };
    let cell = match col {
        Col::I16 => int()?.map(|x| Cell::I16(x as i16)),
        Col::I32 => int()?.map(|x| Cell::I32(x as i32)),
        Col::I64 => int()?.map(Cell::I64),
        Col::Text => r
            .try_get::<_, Option<String>>(i)?
            .map(|t| Cell::Text(Cow::Owned(t))),
        Col::Dec(_) => r.try_get::<_, Option<Decimal>>(i)?.map(Cell::Dec),
        Col::Ts => r.try_get::<_, Option<DateTime<Utc>>>(i)?.map(Cell::Ts),
        Col::Date => r.try_get::<_, Option<NaiveDate>>(i)?.map(Cell::Date),
        Col::Bool => r.try_get::<_, Option<bool>>(i)?.map(Cell::Bool),
        Col::F64 => r.try_get::<_, Option<f64>>(i)?.map(Cell::F64),
        Col::Json => r
            .try_get::<_, Option<serde_json::Value>>(i)?
            .map(|j| Cell::Json(Cow::Owned(j))),
    };
    Ok(cell.unwrap_or(Cell::Null))
}
