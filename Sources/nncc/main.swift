import NNCCLI; CLIPlaceholder.main()
