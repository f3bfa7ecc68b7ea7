from provision.cli.app import main

main()
