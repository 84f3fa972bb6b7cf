from trackline.cli import main

main()
