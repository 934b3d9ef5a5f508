using Akka.Configuration;

namespace Bittensor.Actors;

/// <summary>
/// Parses HOCON text from outside (a <c>--config</c> file) after a check that refuses, with the line, what Akka's
/// parser (1.5.75) loops forever on (found by fuzzing, issue 13 B): a character the HOCON spec forbids in unquoted text
/// (<c>` ^ ? ! @ * &amp; \</c>) outside quotes and comments (<c>x = [*</c>), a bracket closed by the other kind
/// (<c>x = [ }</c>), <c>=</c> or <c>:</c> directly inside a list (<c>x = [a = 1</c>), and a substitution that is not a
/// plain path (<c>${.1"…</c>; quoted path segments are refused too), and anything not closed at the end (a quote, a
/// bracket, a substitution). Valid HOCON without quoted substitution paths has none of these.
/// </summary>
public static class HoconText
{
    /// <summary>Parses <paramref name="text"/> after the check.</summary>
    /// <exception cref="ConfigurationException">A forbidden character outside quotes (message: line and character), or what Akka's parser throws.</exception>
    public static Config Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Check(text);
        return ConfigurationFactory.ParseString(text);
    }

    /// <summary>Throws when <paramref name="text"/> has a forbidden character outside quoted strings and comments.</summary>
    /// <exception cref="ConfigurationException">The first such character, with its line.</exception>
    public static void Check(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var line = 1;
        var open = new Stack<char>();
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\n')
            {
                line++;
            }
            else if (c == '$' && i + 1 < text.Length && text[i + 1] == '{')
            {
                // ${path} / ${?path}: a substitution, not an object.
                var end = text.IndexOf('}', i + 2);
                if (end < 0) throw new ConfigurationException($"HOCON line {line}: a substitution ${{ is not closed");
                foreach (var p in text.AsSpan(i + 2, end - i - 2))
                    if (!(char.IsAsciiLetterOrDigit(p) || p is '_' or '-' or '.' or '?' or ' '))
                        throw new ConfigurationException($"HOCON line {line}: a substitution ${{…}} may hold only a path (letters, digits, _ - .), not '{p}'");
                i = end;
            }
            else if (c is '{' or '[')
            {
                open.Push(c);
            }
            else if (c is '}' or ']')
            {
                if (open.Count == 0) continue; // the parser says so
                if (open.Pop() != (c == '}' ? '{' : '['))
                    throw new ConfigurationException($"HOCON line {line}: '{c}' closes {(c == '}' ? "a list [" : "an object {")}");
            }
            else if (c is '=' or ':' && open.TryPeek(out var top) && top == '[')
            {
                throw new ConfigurationException($"HOCON line {line}: '{c}' inside a list [ … ] (an element that is an object needs {{ … }})");
            }
            else if (c == '"')
            {
                if (i + 2 < text.Length && text[i + 1] == '"' && text[i + 2] == '"')
                {
                    // """raw""": ends at the first """ (extra quotes before it belong to the string).
                    var end = text.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal);
                    if (end < 0) throw new ConfigurationException($"HOCON line {line}: a \"\"\" string is not closed");
                    while (end + 3 < text.Length && text[end + 3] == '"') end++;
                    line += Count(text.AsSpan(i, end + 3 - i));
                    i = end + 2;
                }
                else
                {
                    // Akka's reader runs a quoted string to the next unescaped quote, across line ends.
                    var from = line;
                    for (i++; i < text.Length && text[i] != '"'; i++)
                    {
                        if (text[i] == '\n') line++;
                        else if (text[i] == '\\') i++;
                    }
                    if (i >= text.Length) throw new ConfigurationException($"HOCON line {from}: a quoted string is not closed");
                }
            }
            else if (c == '#' || (c == '/' && i + 1 < text.Length && text[i + 1] == '/'))
            {
                while (i < text.Length && text[i] != '\n') i++;
                if (i < text.Length) line++;
            }
            else if (c is '`' or '^' or '?' or '!' or '@' or '*' or '&' or '\\')
            {
                throw new ConfigurationException($"HOCON line {line}: '{c}' is not allowed outside quotes (quote the value: \"…\")");
            }
        }
        if (open.Count > 0)
            throw new ConfigurationException($"HOCON: {(open.Peek() == '[' ? "a list [" : "an object {")} is not closed at the end of the text");

        static int Count(ReadOnlySpan<char> s)
        {
            var n = 0;
            foreach (var ch in s) if (ch == '\n') n++;
            return n;
        }
    }
}
