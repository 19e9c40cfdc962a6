// The Streamlit components-v2 entry: the component calls the module's default export with
// {data, parentElement, setStateValue}. Concatenated after attention_view.js (view_assets).
export default drawAttentionView;
