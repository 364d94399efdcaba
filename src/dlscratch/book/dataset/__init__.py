"""The book's ``dataset`` package on dlscratch (see dlscratch.book)."""
