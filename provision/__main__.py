import gc

gc.set_threshold(100_000, *gc.get_threshold()[1:])  # as cli.app.main does, before the CLI's own imports (issue 12)

from provision.cli.app import main  # noqa: E402

main()
