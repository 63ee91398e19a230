"""``python -m corpus_audit`` runs the command line."""

from corpus_audit.cli import main

main()
