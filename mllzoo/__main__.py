from mllzoo.cli.main import main

main()
