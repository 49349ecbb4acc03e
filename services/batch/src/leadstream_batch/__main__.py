from leadstream_batch.app import main

main()
