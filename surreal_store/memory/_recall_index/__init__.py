"""The recall index: an in-process HNSW graph (hnswlib) and BM25 index (tantivy) over the
memory table, derived from it and kept in step with its change feed.
"""
