from fanchaoxin.launch import main

main()
