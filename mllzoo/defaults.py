"""Every default that the library and the command line's ``--help`` share, in one module that imports
nothing: ``mllzoo --help`` stays light, and the two cannot drift apart (``tests/test_defaults.py``
checks that each default ``--help`` shows is the one here)."""

# labeling
CHUNK = 1024  # images per saved, resumable unit of labeling work
SHARD_IMAGES = 16_384  # images per Ray task: a model load per 16 chunks of 1,024
CPUS_PER_TASK = 1  # CPUs each Ray task holds
ALLOW_MISSING = 0.001  # register's tolerance: missing + different images, as a share of all
PAPER_NODES, PAPER_PER_NODE = 9_000, 75  # the paper's graph: nodes, and sample images per node
BUDGET_BYTES = 64_000_000  # per label at the paper's scale, every sample its own image
CLAIM_LEASE = (
    600  # seconds a labeling claim holds without renewal (`mllzoo config set claim-lease`)
)
DECODE_WORKERS = (
    0  # processes decoding sample images for local labeling (0: in the labeling process)
)
PROGRESS_EVERY = 30  # seconds between register's progress lines in a log (no terminal)

# the graph
MAX_PER_NODE = 75  # sample images kept per node, as the paper draws them
SEED = 0  # seed of the per-node sample choice, and of the benchmark's hub orders

# selection
K = 2  # models kept per class (at most)
MAX_MODELS = 2  # models used in all, per task; None: no limit. Why these two: docs/design.md, Reuse
MAX_K = 100  # the largest k the web form accepts
ALPHA = 0.7  # weight of a class's own score against the model's mean over the other classes
TOP_NODES = 5  # graph concepts matched per class
CONCEPTS_SHOWN = 10  # concepts `mllzoo concepts` and the web search list


def model_budget(given: int | None) -> int | None:
    """A model budget as a user types it (``--max-models``, the web form's max models): 0 asks for
    no limit, which the library spells None."""
    return given or None


# reuse and evaluation
DEVICE = "auto"  # cpu, cuda, mps or auto
BATCH_SIZE = 64  # images per forward pass when predicting
REUSE_METHODS = ("described", "evidence", "paper")  # mllzoo.reuse.ensemble.REUSE_METHODS
REUSE = "described"  # the class descriptions in the prompts, 1/entropy votes: docs/design.md
BENCH_ORDERS = 10  # random hub orders for the benchmark's growth curve
EMBEDDING_CACHE_MB = 256  # the user's text-embedding cache (`mllzoo config set embedding-cache-mb`)

# the web pages
HOST = "127.0.0.1"  # loopback: a wider address exposes the whole registry
PORT = 8001

# label indexes (mllzoo labels pull)
DOWNLOAD_TIMEOUT = 30.0  # seconds a server may stay silent (connecting, or between two reads)
