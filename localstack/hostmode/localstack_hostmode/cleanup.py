"""Kill function processes left behind by a LocalStack that did not stop them.

usage: python -m localstack_hostmode.cleanup CODE_ROOT

CODE_ROOT is where that LocalStack unpacks function code ({TMPDIR}/lambda); only
runtimes running from there are killed. The launcher runs this before it starts
LocalStack and after it stops one.
"""

import sys
from pathlib import Path

from .process import kill_leftovers


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    killed = kill_leftovers(Path(sys.argv[1]))
    if killed:
        print(
            f"localstack: killed {len(killed)} leftover function process(es): {' '.join(map(str, killed))}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
