"""Workload (a) of scripts/bench: pandas/numpy exploratory data analysis.

Each round builds a DataFrame of ROWS synthetic orders (ints, floats,
categories, strings, dates) and runs what an analyst runs on it: derived
columns, string operations, a merge with a lookup table, groupby
aggregations, a pivot table, describe(), value_counts, sorting, a
rolling mean and a filter. Timed section: ROUNDS rounds.
"""
import sys

import numpy as np
import pandas as pd

import benchlib

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 16_000

REGIONS = np.array(["north", "south", "east", "west", "centre"], dtype=object)
PRODUCTS = np.array(["widget-%02d" % i for i in range(40)], dtype=object)
LOOKUP = pd.DataFrame({
    "product": PRODUCTS,
    "family": ["fam-%d" % (i % 7) for i in range(len(PRODUCTS))],
    "unit_cost": np.linspace(1.0, 20.0, len(PRODUCTS)),
})


def one_round(seed, rows):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "order": np.arange(rows),
        "region": REGIONS[rng.integers(0, len(REGIONS), rows)],
        "product": PRODUCTS[rng.integers(0, len(PRODUCTS), rows)],
        "qty": rng.integers(1, 50, rows),
        "price": rng.gamma(2.0, 10.0, rows).round(2),
        "day": pd.Timestamp("2024-01-01")
        + pd.to_timedelta(rng.integers(0, 365, rows), unit="D"),
    })
    df["revenue"] = df["qty"] * df["price"]
    df["customer"] = "cust-" + (df["order"] % 997).astype(str)
    df["tag"] = df["product"].str.upper().str.replace("WIDGET", "W", regex=False)
    df["is_big"] = df["customer"].str.endswith("7") & (df["qty"] > 25)
    df = df.merge(LOOKUP, on="product", how="left")
    df["margin"] = df["revenue"] - df["qty"] * df["unit_cost"]
    by_region = df.groupby(["region", "family"]).agg(
        revenue=("revenue", "sum"), qty=("qty", "mean"), orders=("order", "count"))
    pivot = df.pivot_table(index="region", columns="family", values="margin",
                           aggfunc="sum")
    desc = df[["qty", "price", "revenue", "margin"]].describe()
    top = df.sort_values("revenue", ascending=False).head(50)
    monthly = df.groupby(df["day"].dt.month)["revenue"].sum()
    rolling = monthly.rolling(3).mean()
    counts = df["tag"].value_counts()
    big = df[df["is_big"]].groupby("customer")["margin"].sum().nlargest(10)
    return (float(by_region["revenue"].sum()) + float(pivot.values.sum())
            + float(desc.loc["mean"].sum()) + len(top) + float(rolling.sum())
            + int(counts.iloc[0]) + float(big.sum()))


def work():
    total = 0.0
    for r in range(ROUNDS):
        total += one_round(r, ROWS)
    return "%.0f" % total


benchlib.run(work, warmup=lambda: one_round(-1 % 1000, ROWS))
