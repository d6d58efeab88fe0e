from gems_mcp import main

main()
