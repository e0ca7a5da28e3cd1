"""Write scripts/demo.ipynb, the notebook `sudo make demo` runs (kept in
git; re-run after editing). A pandas EDA in the usual style: every
intermediate DataFrame stays in a global, so memory piles up cell by cell."""
import nbformat

CELLS = [
    "%load_ext memprof_bpf",
    "import time\nimport numpy as np\nimport pandas as pd",
    "rng = np.random.default_rng(0)\n"
    "n = 2_000_000\n"
    "sales = pd.DataFrame({\n"
    "    \"store\": rng.integers(0, 500, n),\n"
    "    \"item\": rng.integers(0, 2000, n),\n"
    "    \"units\": rng.poisson(3, n),\n"
    "    \"price\": rng.random(n) * 20,\n"
    "})",
    "sales[\"revenue\"] = sales[\"units\"] * sales[\"price\"]\n"
    "sales[\"day\"] = pd.Timestamp(\"2024-01-01\") + "
    "pd.to_timedelta(rng.integers(0, 365, n), unit=\"D\")",
    "by_store = sales.groupby(\"store\").agg(revenue=(\"revenue\", \"sum\"), "
    "units=(\"units\", \"sum\"))",
    "joined = sales.merge(by_store, left_on=\"store\", right_index=True,\n"
    "                     suffixes=(\"\", \"_store\"))  # a full copy, kept",
    "monthly = joined.pivot_table(index=\"store\", "
    "columns=joined[\"day\"].dt.month,\n"
    "                             values=\"revenue\", aggfunc=\"sum\")",
    "top = joined.nlargest(1000, \"revenue\")\n"
    "time.sleep(1.2)  # let the agent publish its figures",
    "%memprof",
    "from memprof_bpf import big_objs\n"
    "big_objs(n=8)  # which names hold the memory, and what `del` frees",
]

nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                             "language": "python"}
nbformat.write(nb, "scripts/demo.ipynb")
