; Parse errors left after cleaning: counted per file, never fatal.
(ERROR) @error
(MISSING) @missing
