"""The `tf-lowprec` command line: one subcommand per experiment runner.

    tf-lowprec quickstart [--epochs 3 ...]   SGD vs GRDA on Fashion-MNIST
    tf-lowprec sweep --dataset mnist ...     optimizer x lr x loss sweep
    tf-lowprec scale [--workers 1,2 ...]     multi-replica / multi-worker scaling benchmark

Each subcommand is a module with `main(argv)`; `tf-lowprec <cmd> --help`
shows its flags.
"""

import importlib
import sys

# subcommand -> (module with main(argv), one-line help)
COMMANDS = {
    "quickstart": ("tf_lowprec.quickstart", "SGD vs GRDA on Fashion-MNIST: table, CSV, PNG"),
    "sweep": ("tf_lowprec.experiments.sweep", "optimizer x learning rate x loss sweep: CSV, table, plots"),
    "scale": ("tf_lowprec.experiments.scaling",
              "throughput vs replicas (MirroredStrategy) or worker processes (--workers)"),
}


def _usage():
    lines = ["usage: tf-lowprec <command> [options]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'tf-lowprec <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"tf-lowprec: unknown command {command!r}; valid commands: "
              f"{', '.join(COMMANDS)}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
