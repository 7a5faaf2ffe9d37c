"""`python -m etlwizard.cli`, for a checkout without the console script."""

from . import main

main()
