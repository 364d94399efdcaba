"""The book's ``common`` package on dlscratch (see dlscratch.book)."""
