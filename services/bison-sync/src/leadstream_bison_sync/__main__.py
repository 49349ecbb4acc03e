from leadstream_bison_sync.app import main

main()
