"""App tests: the Streamlit app driven by AppTest."""
