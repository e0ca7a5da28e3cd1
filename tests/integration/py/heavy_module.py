# Importing this module allocates 12,345,678 bytes at module level.
BLOB = bytearray(12_345_677)
