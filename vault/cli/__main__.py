"""``python -m vault.cli``: the same as ``civicvault``."""

from vault.cli.main import main

if __name__ == "__main__":
    main()
