from gitfactory.entry import main

main()
