"""Zero-shot classification: prompts, clip embeddings, metrics and plots.

A class is represented by the teacher's text embedding of a prompt such as
``this is the sound of {label}``; a clip is assigned to the class whose prompt
embedding has the highest cosine similarity with the clip's audio embedding.
"""
