"""The refine job done by peer engines, on the same NDJSON stocklake refines:
parse each record, drop what is not a valid event, explode the lines, drop repeated event_ids
(first wins), and write Parquet partitioned by event_date. A record in the legacy flat form
(docs/contract.md §1b: it has `product_id`) is a sale of one line, its event id
`transaction_id:product_id`, its time `timestamp` — as stocklake reads it.

The peers get an easier job than stocklake: the plain NDJSON rather than bronze's gzip
envelopes, no reason codes for the rejects, no quarantine table, no Delta log, no decimal
validation beyond a cast. Their time is still the cost of the same shape of work.

usage: python refine_peers.py INPUT.ndjson OUTDIR duckdb|polars|pyspark
prints one JSON line: {"engine", "seconds", "startup_seconds", "events", "lines"}
"""
import json
import os
import shutil
import sys
import time

TYPES = ("sale", "return", "receipt", "waste", "adjustment", "stock_count")


def run_duckdb(src, out):
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    startup = time.perf_counter() - t0
    # read every line as text so that malformed JSON is a reject, not an error
    con.execute(
        f"""
        CREATE TEMP TABLE raw AS
        SELECT column0 AS line FROM read_csv('{src}', columns={{'column0': 'VARCHAR'}},
            delim=chr(1), quote='', escape='', header=false, auto_detect=false,
            ignore_errors=true)
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE ev AS
        WITH parsed AS (
            SELECT j, json_extract_string(j, '$.product_id') AS product_id
            FROM (SELECT TRY_CAST(line AS JSON) AS j FROM raw) WHERE j IS NOT NULL
        )
        SELECT
            CASE WHEN product_id IS NULL THEN json_extract_string(j, '$.event_id')
                 ELSE json_extract_string(j, '$.transaction_id') || ':' || product_id
            END AS event_id,
            CASE WHEN product_id IS NULL THEN json_extract_string(j, '$.event_type')
                 ELSE 'sale' END AS event_type,
            TRY_CAST(json_extract_string(j, CASE WHEN product_id IS NULL THEN '$.event_time'
                 ELSE '$.timestamp' END) AS TIMESTAMPTZ) AS event_time,
            json_extract_string(j, '$.store_id') AS store_id,
            json_extract_string(j, '$.transaction_id') AS transaction_id,
            CASE WHEN product_id IS NULL THEN json_extract(j, '$.lines')
                 ELSE json_array(json_object('sku', product_id,
                     'quantity', json_extract(j, '$.quantity'),
                     'unit_price', json_extract(j, '$.unit_price')))
            END AS lines
        FROM parsed
        """
    )
    types = ",".join(f"'{t}'" for t in TYPES)
    con.execute(
        f"""
        CREATE TEMP TABLE valid AS
        SELECT * FROM ev
        WHERE event_id IS NOT NULL AND event_id <> '' AND event_type IN ({types})
          AND event_time IS NOT NULL AND store_id IS NOT NULL
          AND json_array_length(lines) BETWEEN 1 AND 1000
        QUALIFY row_number() OVER (PARTITION BY event_id) = 1
        """
    )
    con.execute(
        f"""
        COPY (
            SELECT v.event_id, l.ord::INT AS line_no, v.event_type, v.event_time,
                   CAST(v.event_time AS DATE) AS event_date, v.store_id, v.transaction_id,
                   json_extract_string(l.value, '$.sku') AS sku,
                   TRY_CAST(json_extract_string(l.value, '$.quantity') AS DECIMAL(18,3)) AS quantity,
                   TRY_CAST(json_extract_string(l.value, '$.unit_price') AS DECIMAL(18,4)) AS unit_price,
                   TRY_CAST(json_extract_string(l.value, '$.discount') AS DECIMAL(18,4)) AS discount
            FROM valid v, LATERAL (
                SELECT unnest(range(json_array_length(v.lines)::BIGINT)) AS ord
            ) o, LATERAL (SELECT o.ord, json_extract(v.lines, '$[' || o.ord || ']') AS value) l
        ) TO '{out}' (FORMAT PARQUET, PARTITION_BY (event_date))
        """
    )
    events = con.execute("SELECT count(*) FROM valid").fetchone()[0]
    lines = con.execute(
        f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true)"
    ).fetchone()[0]
    return startup, events, lines


def run_polars(src, out):
    import polars as pl

    t0 = time.perf_counter()
    startup = time.perf_counter() - t0
    raw = pl.read_csv(
        src, has_header=False, separator="\x01", quote_char=None, new_columns=["line"],
        schema_overrides={"line": pl.Utf8}, encoding="utf8-lossy",
    )
    line_schema = pl.Struct(
        {"sku": pl.Utf8, "quantity": pl.Utf8, "unit_price": pl.Utf8, "discount": pl.Utf8}
    )
    schema = pl.Struct(
        {
            "event_id": pl.Utf8,
            "event_type": pl.Utf8,
            "event_time": pl.Utf8,
            "store_id": pl.Utf8,
            "transaction_id": pl.Utf8,
            "lines": pl.List(line_schema),
            # the legacy flat form
            "product_id": pl.Utf8,
            "timestamp": pl.Utf8,
            "quantity": pl.Utf8,
            "unit_price": pl.Utf8,
        }
    )
    # Polars cannot skip a record it cannot decode (json_decode and read_ndjson fail on the
    # first): lines that are not JSON objects are dropped first, then a slice that still fails
    # (a wrong type inside) is halved until the failing records are found and dropped
    def valid(text):
        try:
            return isinstance(json.loads(text), dict)
        except (ValueError, RecursionError):
            return False

    def decode(frame):
        try:
            return [frame.with_columns(pl.col("line").str.json_decode(schema).alias("j"))]
        except pl.exceptions.ComputeError:
            if frame.height == 1:
                return []
            half = frame.height // 2
            return decode(frame.slice(0, half)) + decode(frame.slice(half))

    ok = []
    for chunk in raw.iter_slices(50_000):
        try:
            parts = [chunk.with_columns(pl.col("line").str.json_decode(schema).alias("j"))]
        except pl.exceptions.ComputeError:
            chunk = chunk.filter(pl.Series([valid(t) for t in chunk["line"]]))
            parts = decode(chunk)
        ok.extend(p.unnest("j") for p in parts)
    df = pl.concat(ok).drop("line")
    legacy = pl.col("product_id").is_not_null()
    df = df.with_columns(
        pl.when(legacy)
        .then(pl.col("transaction_id") + ":" + pl.col("product_id"))
        .otherwise(pl.col("event_id"))
        .alias("event_id"),
        pl.when(legacy).then(pl.lit("sale")).otherwise(pl.col("event_type")).alias("event_type"),
        pl.when(legacy)
        .then(pl.col("timestamp"))
        .otherwise(pl.col("event_time"))
        .alias("event_time"),
        pl.when(legacy)
        .then(
            pl.concat_list(
                pl.struct(
                    pl.col("product_id").alias("sku"),
                    pl.col("quantity"),
                    pl.col("unit_price"),
                    pl.lit(None, dtype=pl.Utf8).alias("discount"),
                )
            )
        )
        .otherwise(pl.col("lines"))
        .alias("lines"),
    ).drop("product_id", "timestamp", "quantity", "unit_price")
    df = df.with_columns(
        pl.col("event_time").str.to_datetime(time_zone="UTC", strict=False)
    ).filter(
        pl.col("event_id").is_not_null()
        & (pl.col("event_id") != "")
        & pl.col("event_type").is_in(TYPES)
        & pl.col("event_time").is_not_null()
        & pl.col("store_id").is_not_null()
        & pl.col("lines").list.len().is_between(1, 1000)
    ).unique(subset=["event_id"], keep="first", maintain_order=True)
    events = df.height
    lines = (
        df.with_columns(pl.int_ranges(0, pl.col("lines").list.len()).alias("line_no"))
        .explode(["lines", "line_no"])
        .unnest("lines")
        .with_columns(
            pl.col("event_time").dt.date().alias("event_date"),
            pl.col("quantity").cast(pl.Decimal(18, 3), strict=False),
            pl.col("unit_price").cast(pl.Decimal(18, 4), strict=False),
            pl.col("discount").cast(pl.Decimal(18, 4), strict=False),
        )
    )
    lines.write_parquet(out, partition_by=["event_date"])
    return startup, events, lines.height


def run_pyspark(src, out):
    t0 = time.perf_counter()
    from pyspark.sql import SparkSession, functions as F, types as T

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("refine-peer")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - t0
    line = T.StructType(
        [
            T.StructField("sku", T.StringType()),
            T.StructField("quantity", T.DecimalType(18, 3)),
            T.StructField("unit_price", T.DecimalType(18, 4)),
            T.StructField("discount", T.DecimalType(18, 4)),
        ]
    )
    schema = T.StructType(
        [
            T.StructField("event_id", T.StringType()),
            T.StructField("event_type", T.StringType()),
            T.StructField("event_time", T.StringType()),
            T.StructField("store_id", T.StringType()),
            T.StructField("transaction_id", T.StringType()),
            T.StructField("lines", T.ArrayType(line)),
            # the legacy flat form
            T.StructField("product_id", T.StringType()),
            T.StructField("timestamp", T.StringType()),
            T.StructField("quantity", T.DecimalType(18, 3)),
            T.StructField("unit_price", T.DecimalType(18, 4)),
            T.StructField("_corrupt", T.StringType()),
        ]
    )
    df = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt")
        .json(src)
        .cache()
    )
    legacy = F.col("product_id").isNotNull()
    df = df.select(
        F.when(legacy, F.concat_ws(":", "transaction_id", "product_id"))
        .otherwise(F.col("event_id")).alias("event_id"),
        F.when(legacy, F.lit("sale")).otherwise(F.col("event_type")).alias("event_type"),
        F.when(legacy, F.col("timestamp")).otherwise(F.col("event_time")).alias("event_time"),
        "store_id", "transaction_id",
        F.when(
            legacy,
            F.array(F.struct(
                F.col("product_id").alias("sku"), F.col("quantity").alias("quantity"),
                F.col("unit_price").alias("unit_price"),
                F.lit(None).cast(T.DecimalType(18, 4)).alias("discount"),
            )),
        ).otherwise(F.col("lines")).alias("lines"),
        "_corrupt",
    )
    valid = (
        df.where(F.col("_corrupt").isNull())
        .withColumn("event_time", F.to_timestamp("event_time"))
        .where(
            F.col("event_id").isNotNull()
            & (F.col("event_id") != "")
            & F.col("event_type").isin(*TYPES)
            & F.col("event_time").isNotNull()
            & F.col("store_id").isNotNull()
            & F.size("lines").between(1, 1000)
        )
        .dropDuplicates(["event_id"])
        .cache()
    )
    events = valid.count()
    lines = (
        valid.select("*", F.posexplode("lines").alias("line_no", "line"))
        .select(
            "event_id", "line_no", "event_type", "event_time",
            F.to_date("event_time").alias("event_date"), "store_id", "transaction_id",
            "line.sku", "line.quantity", "line.unit_price", "line.discount",
        )
    )
    lines.write.mode("overwrite").partitionBy("event_date").parquet(out)
    n = spark.read.parquet(out).count()
    spark.stop()
    return startup, events, n


def main():
    src, out, engine = sys.argv[1], sys.argv[2], sys.argv[3]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    fn = {"duckdb": run_duckdb, "polars": run_polars, "pyspark": run_pyspark}[engine]
    t0 = time.perf_counter()
    startup, events, lines = fn(src, out)
    total = time.perf_counter() - t0
    print(json.dumps({"engine": engine, "seconds": round(total, 3),
                      "startup_seconds": round(startup, 3), "events": events, "lines": lines}))


if __name__ == "__main__":
    main()
