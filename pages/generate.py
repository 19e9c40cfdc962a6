"""Generate page (decoders): write token by token, then replay each step: the new token's
attention over its context, and the candidates it was drawn from."""

import streamlit as st

from core import BUILTIN_MODELS
from core.methods.generate import generate_steps
from core.policy.errors import AttnScopeError
from core.policy.settings import check_request
from ui.derived import finish_generation
from ui.figures import show_figure
from ui.services import app_settings, count_request, heavy_work, model_named
from ui.sidebar import selected_model_name
from ui.state import CJK_KEY, GENERATION_KEY, GENERATION_PENDING_KEY, WORDS_KEY
from ui.text import lang, show_error, tr
from ui.widgets import sampling_controls
from viz.charts import step_mean_chart
from viz.heatmaps import step_attention_heatmap
from viz.tables import candidates_table

PROMPT_WIDGET = "generate_prompt"
CHAT_WIDGET = "generate_chat"
RUN_BUTTON = "generate_run"
STOP_BUTTON = "generate_stop"
RESET_BUTTON = "generate_reset"
STEP_WIDGET = "generate_step"
LAYER_WIDGET = "generate_layer"
DEFAULT_PROMPT = "The capital of France is"
STOP_REASONS = {
    "eos": "generate.reason_eos",
    "max_new_tokens": "generate.reason_max",
    "stopped": "generate.reason_stopped",
}

language = lang()
st.header(tr("generate.header"))
model_name = selected_model_name()
if model_name in BUILTIN_MODELS and BUILTIN_MODELS[model_name].kind != "decoder":
    st.info(tr("generate.decoders_only"))
    st.stop()

st.session_state.setdefault(PROMPT_WIDGET, DEFAULT_PROMPT)
st.text_area(tr("generate.prompt"), key=PROMPT_WIDGET, height=90)
make_config = sampling_controls("generate", max_new=24, greedy=False)
chat = st.toggle(tr("generate.chat"), key=CHAT_WIDGET, help=tr("generate.chat_help"))

if finish_generation():  # what a Stop interrupted
    st.info(tr("generate.stopped_before_token"))
buttons = st.columns(3)
run = buttons[0].button(tr("generate.run"), key=RUN_BUTTON, type="primary")
if buttons[1].button(tr("generate.reset"), key=RESET_BUTTON):
    st.session_state.pop(GENERATION_KEY, None)
if run:  # the previous generation stays until this one has a token
    try:
        config = make_config(use_chat_template=chat)
        prompt = st.session_state[PROMPT_WIDGET]
        settings = app_settings()
        check_request(settings, model=model_name, text=prompt)
        count_request()
        model = model_named(model_name)
        steps_iter = generate_steps(model, prompt, config, max_tokens=settings.max_tokens)
    except AttnScopeError as error:
        show_error(error)
        st.stop()
    # Stop reruns the script, which ends this loop at its next Streamlit call; the steps made so
    # far are already in the session, and the next run gathers them.
    buttons[2].button(tr("generate.stop"), key=STOP_BUTTON)
    written, shown, steps = st.empty(), "", []
    st.session_state[GENERATION_PENDING_KEY] = (model_name, prompt, config, steps)
    with heavy_work():
        for step in steps_iter:
            # the end token that stops generation is named below, not written
            shown += step.text if step.finish_reason != "eos" else ""
            written.text(shown)  # a Stop ends the run here: a token is kept once it was shown
            steps.append(step)
    finish_generation()
    st.rerun()

generation = st.session_state.get(GENERATION_KEY)
if generation is None or not generation.steps:
    st.caption(tr("generate.hint"))
    st.stop()
st.subheader(tr("generate.output"))
st.text(generation.output_text)
st.caption(
    tr(
        "generate.summary",
        tokens=len(generation.steps),
        reason=tr(STOP_REASONS[generation.stop_reason], token=generation.end_token),
    )
)
st.download_button(
    tr("generate.download"),
    generation.to_json(indent=1).encode("utf-8"),
    file_name="generation.json",
    mime="application/json",
)

st.subheader(tr("generate.replay"))
last = len(generation.steps) - 1
index = st.slider(tr("generate.step"), 0, max(last, 1), value=last, key=STEP_WIDGET) if last else 0
index = min(index, last)
step = generation.steps[index]
n_layers = step.attention.shape[0]
layer = st.selectbox(tr("common.layer"), range(n_layers), index=n_layers - 1, key=LAYER_WIDGET)
if st.session_state.get(WORDS_KEY):
    labels, attention = generation.step_words(index, st.session_state[CJK_KEY])
else:
    labels, attention = generation.tokens[: step.ctx_len], step.attention
# st.text, not markdown: a generated token must never be read as markup
st.text(tr("generate.step_token", token=step.token, prob=f"{step.prob:.3f}", rank=step.rank))
show_figure(
    step_attention_heatmap(attention, labels, layer, step.token, lang=language), key="step_heads"
)
show_figure(step_mean_chart(attention, labels, layer, lang=language), key="step_mean")
st.dataframe(candidates_table(step, lang=language), hide_index=True)
