namespace SharpLM;

/// <summary>
/// Which exceptions are a clear message for the user (a bad file, a bad argument, a missing file, a model too large for
/// memory) rather than a bug. The CLI prints these as one line and exits 1; any other exception is a defect and shows
/// as a stack trace. The fuzz harnesses (fuzz/SharpLM.Fuzz) use the stricter <see cref="IsCleanRejection"/>.
/// </summary>
internal static class UserErrors
{
    /// <summary>True for the exception types whose message is shown to the user as is.</summary>
    public static bool IsClear(Exception e) =>
        e is IOException or FormatException or InvalidDataException or ArgumentException or NotSupportedException
            or InvalidOperationException or UnauthorizedAccessException or KeyNotFoundException or OutOfMemoryException;

    /// <summary>How a reader must reject a hostile input: a format error (<see cref="InvalidDataException"/>,
    /// <see cref="FormatException"/> and so <see cref="Inference.ChatTemplates.ChatTemplateException"/>,
    /// <see cref="NotSupportedException"/>, <see cref="EndOfStreamException"/>). An <see cref="OutOfMemoryException"/>
    /// (an allocation sized by a header), a <see cref="NullReferenceException"/>, an <see cref="IndexOutOfRangeException"/>,
    /// an <see cref="OverflowException"/> or an <see cref="ArgumentException"/> from inside a reader is a finding.</summary>
    public static bool IsCleanRejection(Exception e) =>
        e is InvalidDataException or FormatException or NotSupportedException or EndOfStreamException;
}
