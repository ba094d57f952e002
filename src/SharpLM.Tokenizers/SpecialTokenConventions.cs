namespace SharpLM.Tokenizers;

/// <summary>
/// The one list of special-token conventions across model families, used where a vocabulary does not say which of its
/// tokens plays a role: the tokenizer's BOS/EOS/PAD guesses and the chat loop's end-of-turn stops.
/// </summary>
public static class SpecialTokenConventions
{
    /// <summary>Beginning of sequence: SentencePiece, LLaMA-3, Gemma, GPT-J-style, BERT.</summary>
    public static IReadOnlyList<string> Bos { get; } = ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "[CLS]"];

    /// <summary>End of sequence.</summary>
    public static IReadOnlyList<string> Eos { get; } = ["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "<|im_end|>", "[SEP]"];

    /// <summary>Padding.</summary>
    public static IReadOnlyList<string> Pad { get; } = ["<pad>", "[PAD]", "<|pad|>", "<|endoftext|>"];

    /// <summary>Tokens that end an assistant turn in the common chat templates (ChatML, LLaMA-3, Phi-3, Gemma, LLaMA-2),
    /// and LLaMA-3.1's end of a message that awaits a tool's output (&lt;|eom_id|&gt;, after a &lt;|python_tag|&gt; call;
    /// llama.cpp ends generation at it too).</summary>
    public static IReadOnlyList<string> EndOfTurn { get; } = ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<|endoftext|>", "</s>", "<end_of_turn>"];
}
