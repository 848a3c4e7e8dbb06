from dissemination.cli import main

main()
