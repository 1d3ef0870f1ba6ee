from optkit.cli import main

main()
